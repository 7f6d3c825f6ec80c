using System.Text.Json;
using LoRA.Managed.Cli;

namespace LoRA.Managed.Tests.Cli;

/// <summary>
/// <c>--json</c> reports go through source-generated metadata (CliJsonContext), which NativeAOT needs: every value
/// type the commands put in a report must be listed there, and one that is not fails loudly.
/// </summary>
public class JsonReportTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("lora-json-report-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void WritesEveryValueTypeTheCommandsUse()
    {
        string path = Path.Combine(_dir, "r.json");
        JsonReport.Write(path, new Dictionary<string, object?>
        {
            ["s"] = "0-7", ["b"] = true, ["i"] = 3, ["l"] = 535_818L, ["u"] = ulong.MaxValue, ["f"] = 0.5f,
            ["d"] = 0.125, ["da"] = new[] { 1.0, 2.0 }, ["dm"] = new[] { new[] { 1.0 }, new[] { 2.0 } },
            ["im"] = new[] { new[] { 4, 5 } },
            ["rows"] = new List<Dictionary<string, object?>> { new() { ["rank"] = 4 } }, ["none"] = null,
        });
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        JsonElement r = doc.RootElement;
        Assert.Multiple(() =>
        {
            Assert.That(r.GetProperty("s").GetString(), Is.EqualTo("0-7"));
            Assert.That(r.GetProperty("b").GetBoolean(), Is.True);
            Assert.That(r.GetProperty("l").GetInt64(), Is.EqualTo(535_818));
            Assert.That(r.GetProperty("u").GetUInt64(), Is.EqualTo(ulong.MaxValue));
            Assert.That(r.GetProperty("f").GetDouble(), Is.EqualTo(0.5));
            Assert.That(r.GetProperty("dm")[1][0].GetDouble(), Is.EqualTo(2.0));
            Assert.That(r.GetProperty("im")[0][1].GetInt32(), Is.EqualTo(5));
            Assert.That(r.GetProperty("rows")[0].GetProperty("rank").GetInt32(), Is.EqualTo(4));
            Assert.That(r.GetProperty("none").ValueKind, Is.EqualTo(JsonValueKind.Null));
        });
        Assert.That(File.ReadAllText(path), Does.Contain("\n  \"s\": \"0-7\""), "indented as before");
    }

    [Test]
    public void AValueTypeNotListedFailsInsteadOfFallingBackToReflection()
    {
        string path = Path.Combine(_dir, "r.json");
        Assert.Throws<NotSupportedException>(() =>
            JsonReport.Write(path, new Dictionary<string, object?> { ["when"] = DateTime.UnixEpoch }));
    }
}
