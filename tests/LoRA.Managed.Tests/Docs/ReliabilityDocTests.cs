using System.Reflection;
using System.Text.RegularExpressions;

namespace LoRA.Managed.Tests.Docs;

/// <summary>docs/08-reliability.md names the tests behind each promise; every name must be a test that
/// exists.</summary>
public partial class ReliabilityDocTests
{
    [GeneratedRegex(@"`(?<class>[A-Za-z]+Tests)\.(?<method>[A-Za-z0-9]+)`")]
    private static partial Regex TestName();

    [Test]
    public void EveryTestTheReliabilityPageNamesExists()
    {
        string text = File.ReadAllText(Path.Combine(RepoPaths.Root, "docs", "08-reliability.md"));
        var tests = typeof(ReliabilityDocTests).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance)
                .Where(m => m.GetCustomAttributes().Any(a
                    => a is TestAttribute or TestCaseAttribute or TestCaseSourceAttribute))
                .Select(m => $"{t.Name}.{m.Name}"))
            .ToHashSet(StringComparer.Ordinal);
        var named = TestName().Matches(text).Select(m
            => $"{m.Groups["class"].Value}.{m.Groups["method"].Value}").Distinct().ToList();
        Assert.That(named, Has.Count.GreaterThan(30), "the page names its tests");
        Assert.That(named.Where(n => !tests.Contains(n)), Is.Empty, "named on the page but not a test");
    }
}
