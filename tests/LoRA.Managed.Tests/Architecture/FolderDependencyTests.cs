using System.Text.RegularExpressions;
using LoRA.Managed.Tests.Docs;

namespace LoRA.Managed.Tests.Architecture;

/// <summary>
/// The library's folders depend on each other only as ARCHITECTURE.md's map says: any reference to
/// <c>LoRA.Managed.X</c> (a using directive, a qualified name, a cref) from folder Y must be an edge of
/// <see cref="Allowed"/>. A new folder must be added here (and to the map) before it builds green.
/// </summary>
public partial class FolderDependencyTests
{
    /// <summary>Each library folder and the folders it may use: lower layers only, so there is no cycle.</summary>
    internal static readonly IReadOnlyDictionary<string, string[]> Allowed = new Dictionary<string, string[]>
    {
        ["Tensors"] = [],
        ["Kernels"] = [],
        ["IO"] = ["Tensors"],
        ["Autograd"] = ["Tensors", "Kernels"],
        ["Nn"] = ["Tensors", "Kernels", "Autograd", "IO"],
        ["Optim"] = ["Tensors", "Kernels", "Nn"],
        ["Lora"] = ["Tensors", "Kernels", "Autograd", "IO", "Nn"],
        ["Data"] = ["Tensors", "IO"],
        ["Text"] = ["Tensors", "IO", "Data"],
        ["Models"] = ["Tensors", "Kernels", "Autograd", "IO", "Nn", "Data", "Text"],
        ["Training"] = ["Tensors", "Kernels", "Autograd", "IO", "Nn", "Optim", "Data", "Text"],
        ["Recipes"] = ["Tensors", "Kernels", "Autograd", "IO", "Nn", "Optim", "Lora", "Data", "Text", "Models",
            "Training"],
    };

    [GeneratedRegex(@"\bLoRA\.Managed\.([A-Z][A-Za-z]*)\b")]
    private static partial Regex Reference();

    private static string Library => Path.Combine(RepoPaths.Root, "src", "LoRA.Managed");

    private static IEnumerable<string> Folders() =>
        Directory.GetDirectories(Library).Select(Path.GetFileName)
            .Where(n => n is not ("bin" or "obj" or "Properties"))!;

    [Test]
    public void EveryFolderIsOnTheMap()
    {
        Assert.That(Folders(), Is.SubsetOf(Allowed.Keys),
            "a library folder is missing from Allowed (and ARCHITECTURE.md)");
        string map = File.ReadAllText(Path.Combine(RepoPaths.Root, "ARCHITECTURE.md"));
        foreach (string folder in Allowed.Keys)
            Assert.That(map, Does.Contain($"`{folder}/`"), $"ARCHITECTURE.md does not describe {folder}/");
    }

    [Test]
    public void NoFolderUsesOneTheMapForbids()
    {
        var violations = new List<string>();
        foreach (string folder in Folders())
            foreach (string file in Directory.EnumerateFiles(Path.Combine(Library, folder), "*.cs",
                SearchOption.AllDirectories))
            {
                string[] lines = File.ReadAllLines(file);
                for (int i = 0; i < lines.Length; i++)
                    foreach (Match m in Reference().Matches(lines[i]))
                    {
                        string target = m.Groups[1].Value;
                        if (target != folder && Allowed.ContainsKey(target) && !Allowed[folder].Contains(target))
                            violations.Add($"{Path.GetRelativePath(Library, file)}:{i + 1} uses {target}");
                    }
            }
        Assert.That(violations, Is.Empty, "folder dependencies outside ARCHITECTURE.md's map");
    }

    [Test]
    public void TheMapHasNoCycle()
    {
        var state = new Dictionary<string, int>();
        bool Visit(string n)
        {
            if (state.TryGetValue(n, out int s)) return s == 2;
            state[n] = 1;
            foreach (string d in Allowed[n]) if (!Visit(d)) return false;
            state[n] = 2;
            return true;
        }
        Assert.That(Allowed.Keys.All(Visit), Is.True);
    }
}
