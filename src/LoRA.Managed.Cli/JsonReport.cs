using System.Text.Json;
using LoRA.Managed.IO;

namespace LoRA.Managed.Cli;

/// <summary>Writes a command's figures as a JSON object, atomically (temporary file, flush, rename).</summary>
internal static class JsonReport
{
    private static readonly JsonSerializerOptions Options = new() { WriteIndented = true };

    public static void Write<T>(string path, T values)
    {
        ModelArguments.RequireWritableFile("--json", path);
        AtomicFile.Write(Path.GetFullPath(path), stream => JsonSerializer.Serialize(stream, values, Options));
    }
}
