using System.Text.Json;
using LoRA.Managed.Autograd;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Tests.Models;

namespace LoRA.Managed.Tests.Cli;

/// <summary><c>lora adapters combine</c> (PEFT's <c>add_weighted_adapter</c>) as a user runs it, on the
/// llama-gqa-tied fixture and the adapters of tests/fixtures/hf/make_combine_fixtures.py.</summary>
[NonParallelizable]
public class AdaptersCommandTests
{
    private static readonly string Folder = HfFixtures.Folder("llama-gqa-tied");

    private static string Adapter(string name, double weight) =>
        Path.Combine(Folder, name) + ":" + weight.ToString(System.Globalization.CultureInfo.InvariantCulture);

    [Test]
    public void CombineWritesAPeftAdapterWithTheTwinsLogits()
    {
        using var dir = new HfFixtures.TempDir();
        string outDir = Path.Combine(dir.Path, "mix"), json = Path.Combine(dir.Path, "mix.json");
        var (code, output, err) = LoraCli.Run("adapters", "combine", "--base", Folder, "--adapter",
            Adapter("combine-a", 0.7),
            "--adapter", Adapter("combine-b", -0.4), "--combination", "linear", "--out", outDir, "--json", json);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("rank 4 on 6 layer(s)"));
        var r = JsonDocument.Parse(File.ReadAllText(json)).RootElement;
        Assert.That(r.GetProperty("rank").GetInt32(), Is.EqualTo(4));
        Assert.That(r.GetProperty("adapters")[1].GetProperty("weight").GetDouble(), Is.EqualTo(-0.4));

        AssertLogitsAsTheTwin(PeftModel.FromPretrained(HfModel.Load(Folder), outDir), "linear");
    }

    /// <summary>The combined adapter's logits on the fixture's ids against the twin's
    /// (combine_expected.json).</summary>
    private static void AssertLogitsAsTheTwin(PeftModel peft, string key)
    {
        var expected = HfFixtures.Json(Path.Combine("llama-gqa-tied", "combine_expected.json")).GetProperty(key);
        HfModelTwinTests.AssertClose(LiveAdapterFixture.Logits(peft), HfFixtures.Floats(expected.GetProperty("logits")),
            2e-4, key);
    }

    [Test]
    public void CombineTakesEmbeddingAdapters()
    {
        using var dir = new HfFixtures.TempDir();
        string outDir = Path.Combine(dir.Path, "mix");
        var (code, output, err) = LoraCli.Run("adapters", "combine", "--base", Folder, "--adapter",
            Adapter("combine-emb-a", 1.1), "--adapter", Adapter("combine-emb-c", 0.6), "--combination", "cat",
            "--out", outDir);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("rank 6 on 3 layer(s)"));
        var peft = PeftModel.FromPretrained(HfModel.Load(Folder), outDir);
        Assert.That(peft.EmbeddingLayers().Count(), Is.EqualTo(1));
        AssertLogitsAsTheTwin(peft, "emb_cat");
    }

    [Test]
    public void SvdTakesTheRankAndABareFolderWeighsOne()
    {
        using var dir = new HfFixtures.TempDir();
        string outDir = Path.Combine(dir.Path, "mix");
        var (code, _, err) = LoraCli.Run("adapters", "combine", "--base", Folder, "--adapter",
            Path.Combine(Folder, "combine-a"),
            "--adapter", Adapter("combine-c", 0.5), "--rank", "2", "--out", outDir);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(AdapterConfigFile.Read(Path.Combine(outDir, AdapterConfigFile.FileName)).Rank, Is.EqualTo(2));
    }

    [Test]
    public void BadInputExitsTwoWithOneLineNamingIt()
    {
        using var dir = new HfFixtures.TempDir();
        string outDir = Path.Combine(dir.Path, "mix");
        string gpt2Adapter = Path.Combine(HfFixtures.Folder("gpt2-tiny"), "adapter");
        var cases = new (string[] Args, string Named)[]
        {
            (["--adapter", Adapter("missing", 1)], Path.Combine(Folder, "missing")),
            (["--adapter", Adapter("combine-a", 1), "--adapter", gpt2Adapter],
                Path.Combine(gpt2Adapter, AdapterConfigFile.FileName)),
            (["--adapter", Adapter("combine-a", 1), "--adapter", Adapter("combine-c", 1), "--combination", "linear"],
                "has r=2"),
            (["--adapter", Adapter("combine-a", 1), "--combination", "cat", "--rank", "2"], "--rank"),
            (["--adapter", Adapter("combine-a", 1), "--combination", "mean"], "--combination"),
            (["--adapter", Adapter("combine-a", 1), "--adapter", Adapter("dora-adapter", 1)],
                Path.Combine(Folder, "dora-adapter") + " uses DoRA"),
        };
        foreach (var (args, named) in cases)
        {
            var (code, _, err) = LoraCli.Run(["adapters", "combine", "--base", Folder, .. args, "--out", outDir]);
            Assert.That(code, Is.EqualTo(2), string.Join(" ", args));
            Assert.That(err.TrimEnd().Split('\n'), Has.Length.EqualTo(1), err);
            Assert.That(err, Does.Contain(named), err);
            Assert.That(Directory.Exists(outDir), Is.False, "nothing written");
        }
    }
}
