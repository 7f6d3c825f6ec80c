using LoRA.Managed.Tests.Docs;

namespace LoRA.Managed.Tests.Architecture;

/// <summary>
/// Lines wrap at 120 characters (counted in Unicode code points, not bytes: <c>×</c> or <c>∂</c> is one) in every C#
/// file of the repository, so a change that adds a longer one fails here, naming the file and line.
/// </summary>
public class LineLengthTests
{
    private const int Width = 120;

    private static IEnumerable<string> SourceFiles()
    {
        foreach (string top in new[] { "src", "tests", "benchmarks", "docs", "samples" })
        {
            string dir = Path.Combine(RepoPaths.Root, top);
            if (!Directory.Exists(dir)) continue;
            foreach (string file in Directory.EnumerateFiles(dir, "*.cs", SearchOption.AllDirectories))
            {
                string rel = Path.GetRelativePath(RepoPaths.Root, file).Replace('\\', '/');
                if (rel.Contains("/bin/", StringComparison.Ordinal) || rel.Contains("/obj/", StringComparison.Ordinal))
                    continue;
                yield return rel;
            }
        }
    }

    [Test]
    public void NoCSharpLineIsLongerThan120Characters()
    {
        var longLines = new List<string>();
        foreach (string rel in SourceFiles())
        {
            string[] lines = File.ReadAllLines(Path.Combine(RepoPaths.Root, rel));
            for (int i = 0; i < lines.Length; i++)
            {
                int length = lines[i].EnumerateRunes().Count();   // an emoji is one character, two UTF-16 units
                if (length > Width) longLines.Add($"{rel}:{i + 1} ({length} characters)");
            }
        }
        Assert.That(SourceFiles().Count(), Is.GreaterThan(100), "the source files were not found");
        Assert.That(longLines, Is.Empty, "lines over 120 characters:\n" + string.Join("\n", longLines));
    }
}
