using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using LoRA.Managed.IO;

namespace LoRA.Managed.Cli;

/// <summary>Writes a command's figures as a JSON object, atomically (temporary file, flush, rename).</summary>
internal static class JsonReport
{
    public static void Write<T>(string path, T values)
    {
        ModelArguments.RequireWritableFile("--json", path);
        // Source-generated metadata (CliJsonContext): reflection-based serialization is disabled under NativeAOT.
        var info = (JsonTypeInfo<T>)(CliJsonContext.Default.GetTypeInfo(typeof(T))
            ?? throw new InvalidOperationException($"JsonReport: {typeof(T).Name} is not listed in CliJsonContext."));
        AtomicFile.Write(Path.GetFullPath(path), stream => JsonSerializer.Serialize(stream, values, info));
    }
}
