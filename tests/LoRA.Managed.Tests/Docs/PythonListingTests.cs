using System.Text.RegularExpressions;

namespace LoRA.Managed.Tests.Docs;

/// <summary>
/// The chapters show PyTorch/PEFT listings beside their C# twins. PyTorch is not on the CI machine, so
/// <c>docs/samples/python/check_python_listings.py</c> runs them (with Debian's python3-torch) and checks what their
/// comments claim; this test keeps that script complete: every ```python block of every chapter must be listed in
/// it, under its chapter and first line, so a new or edited listing cannot go unchecked.
/// </summary>
public partial class PythonListingTests
{
    private const string Checker = "docs/samples/python/check_python_listings.py";

    [GeneratedRegex(@"```python\n(?<body>.*?)```", RegexOptions.Singleline)]
    private static partial Regex PythonBlock();

    [Test]
    public void EveryPythonListingHasACheck()
    {
        string checker = File.ReadAllText(Path.Combine(RepoPaths.Root, Checker));
        int blocks = 0;
        foreach (string path in Directory.GetFiles(Path.Combine(RepoPaths.Root, "docs"), "*.md").Order())
        {
            string chapter = Path.GetFileName(path);
            foreach (Match m in PythonBlock().Matches(File.ReadAllText(path).Replace("\r\n", "\n")))
            {
                blocks++;
                string first = m.Groups["body"].Value.Split('\n')[0];
                int comment = first.IndexOf("  #", StringComparison.Ordinal);
                if (comment >= 0) first = first[..comment];
                first = first.TrimEnd();
                // The script keys listings as Python string literals: quotes inside are escaped there.
                string literal = "\"" + first.Replace("\"", "\\\"") + "\"";
                Assert.That(checker, Does.Contain($"\"{chapter}\""),
                    $"{chapter} has Python listings; {Checker} has no entry for it");
                Assert.That(checker, Does.Contain(literal),
                    $"{chapter}: the Python listing starting '{first}' is not checked by {Checker}");
            }
        }
        Assert.That(blocks, Is.GreaterThan(0), "no ```python listing found in docs/: the pattern is stale");
    }
}
