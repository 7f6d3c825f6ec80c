using System.Text.Json;
using LoRA.Managed.Tests.Docs;

namespace LoRA.Managed.Tests.Models;

/// <summary>The fixture folders made by tests/fixtures/hf/make_fixtures.py and what its PyTorch twins
/// recorded.</summary>
internal static class HfFixtures
{
    public static string Folder(string name) => Path.Combine(RepoPaths.Root, "tests", "fixtures", "hf", name);

    public static JsonElement Expected(string name) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder(name), "expected.json"))).RootElement;

    public static JsonElement Json(string file) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoPaths.Root, "tests", "fixtures", "hf", file))).RootElement;

    /// <summary>../shared/models/stories260K: walks up from the repository root to a sibling <c>shared/</c>.</summary>
    public static string Stories260K
    {
        get
        {
            for (var dir = new DirectoryInfo(RepoPaths.Root); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "shared", "models", "stories260K");
                if (Directory.Exists(candidate)) return candidate;
            }
            throw new DirectoryNotFoundException($"shared/models/stories260K not found above {RepoPaths.Root}.");
        }
    }

    public static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    public static float[] Floats(JsonElement e) => e.EnumerateArray().Select(x => x.GetSingle()).ToArray();

    /// <summary>A temporary folder deleted on dispose.</summary>
    public sealed class TempDir : IDisposable
    {
        public TempDir() =>
            Directory.CreateDirectory(Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(),
                "lora-hf-" + Guid.NewGuid().ToString("N")));

        public string Path { get; }

        public void Dispose()
        {
            try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
        }
    }
}
