using System.Text.Json;
using LoRA.Managed.IO;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Lora;

/// <summary>
/// PEFT's <c>rank_pattern</c> and <c>alpha_pattern</c> (issue 15): which module a key selects (PEFT's
/// <c>get_pattern_key</c>), the rank and scale each adapted module gets, and the round trip through PEFT's files.
/// </summary>
public class RankPatternTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Path.Combine(TestContext.CurrentContext.WorkDirectory, $"pattern-{Guid.NewGuid():N}");

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    // get_pattern_key: the key equals the name, or re.match(rf"(.*\.)?({key})$", name).
    [TestCase("q_proj", "model.layers.0.self_attn.q_proj", true)]
    [TestCase("self_attn.q_proj", "model.layers.0.self_attn.q_proj", true)]
    [TestCase("layers.0.self_attn.q_proj", "model.layers.0.self_attn.q_proj", true)]
    [TestCase("proj", "model.layers.0.self_attn.q_proj", false)]          // only whole dotted components
    [TestCase("q_proj", "model.layers.0.self_attn.q_proj_x", false)]      // anchored at the end
    [TestCase(@"layers\.[01]\.self_attn\.q_proj", "model.layers.1.self_attn.q_proj", true)]
    [TestCase(@"layers\.[01]\.self_attn\.q_proj", "model.layers.2.self_attn.q_proj", false)]
    [TestCase(".*q_proj", "model.layers.7.self_attn.q_proj", true)]
    [TestCase("layers.5", "layers.5", true)]
    [TestCase("5", "layers.5", true)]
    [TestCase("5", "layers.15", false)]
    public void KeysMatchAsPeftsGetPatternKey(string key, string module, bool expected) =>
        Assert.That(TargetMatcher.MatchesPattern(key, module), Is.EqualTo(expected));

    [Test]
    public void FirstMatchingKeyWinsAndOthersKeepTheDefaults()
    {
        var config = new LoraConfig
        {
            Rank = 4, Alpha = 8, TargetModules = ["layers.1", "layers.3", "layers.5"],
            RankPattern = [new("layers.1", 8), new(@"layers\.[13]", 2)],
            AlphaPattern = [new("layers.3", 16)],
        };
        Assert.That((config.ForModule("layers.1").Rank, config.ForModule("layers.1").Alpha), Is.EqualTo((8, 8.0)));
        Assert.That((config.ForModule("layers.3").Rank, config.ForModule("layers.3").Alpha), Is.EqualTo((2, 16.0)));
        Assert.That((config.ForModule("layers.5").Rank, config.ForModule("layers.5").Alpha), Is.EqualTo((4, 8.0)));
        Assert.That(config.ForModule("layers.3").Scale, Is.EqualTo(16.0 / 2));
        Assert.That(config.ForModule("layers.3").RankPattern, Is.Empty);
    }

    private static LoraConfig Patterned(LoraScaling scaling = LoraScaling.AlphaOverRank) => new()
    {
        Rank = 4, Alpha = 8, Scaling = scaling, TargetModules = ["layers.1", "layers.3", "layers.5"],
        RankPattern = [new("layers.1", 8), new("layers.5", 2)],
        AlphaPattern = [new("layers.5", 4)],
    };

    [Test]
    public void EachModuleGetsItsOwnRankAndScale()
    {
        var peft = LoraModel.GetPeftModel(Mlp.Blog(new TorchGenerator(0)), Patterned(), new TorchGenerator(1));
        var layers = peft.LoraLayers().ToDictionary(p => p.Key, p => p.Value);
        Assert.That(layers["layers.1"].LoraA["default"].Weight.Shape, Is.EqualTo(new[] { 8, 784 }));
        Assert.That(layers["layers.3"].LoraA["default"].Weight.Shape, Is.EqualTo(new[] { 4, 512 }));
        Assert.That(layers["layers.5"].LoraB["default"].Weight.Shape, Is.EqualTo(new[] { 10, 2 }));
        Assert.That(layers["layers.1"].Scale("default"), Is.EqualTo(8.0 / 8));
        Assert.That(layers["layers.3"].Scale("default"), Is.EqualTo(8.0 / 4));
        Assert.That(layers["layers.5"].Scale("default"), Is.EqualTo(4.0 / 2));
        Assert.That(peft.TrainableParameterCount, Is.EqualTo(8 * (784 + 512) + 4 * (512 + 256) + 2 * (256 + 10)));
    }

    [Test]
    public void PatternsRoundTripThroughPeftsFilesWithTheSameOutputs()
    {
        var peft = LoraModel.GetPeftModel(Mlp.Blog(new TorchGenerator(0)), Patterned(), new TorchGenerator(1));
        var g = new TorchGenerator(99);
        foreach (var p in peft.TrainableParameters()) g.FillUniform(p.Data, -0.1f, 0.1f);
        peft.SaveAdapter(_dir);

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "adapter_config.json")));
        var rp = json.RootElement.GetProperty("rank_pattern");
        Assert.That(rp.EnumerateObject().Select(p => (p.Name, p.Value.GetInt32())),
            Is.EqualTo(new[] { ("layers.1", 8), ("layers.5", 2) }));
        var ap = json.RootElement.GetProperty("alpha_pattern");
        Assert.That(ap.EnumerateObject().Select(p => (p.Name, p.Value.GetDouble())),
            Is.EqualTo(new[] { ("layers.5", 4.0) }));
        var weights = SafeTensors.Read(Path.Combine(_dir, "adapter_model.safetensors"));
        Assert.That(weights.Tensors["base_model.model.layers.1.lora_A.weight"].Shape, Is.EqualTo(new[] { 8, 784 }));

        var loaded = PeftModel.FromPretrained(Mlp.Blog(new TorchGenerator(0)), _dir);
        Tensor x = new TorchGenerator(5).Rand(3, 784);
        float[] want = peft.Forward(x).Data.ToArray(), got = loaded.Forward(x).Data.ToArray();
        Assert.That(got, Is.EqualTo(want), "bit for bit");
    }

    [Test]
    public void TheBlogsScalingWithPatternsIsRefusedOnSaveNotWrittenWrong()
    {
        var peft = LoraModel.GetPeftModel(Mlp.Blog(new TorchGenerator(0)), Patterned(LoraScaling.Alpha),
            new TorchGenerator(1));
        var ex = Assert.Throws<ArgumentException>(() => peft.SaveAdapter(_dir));
        Assert.That(ex!.Message, Does.Contain("rank_pattern"));
        Assert.That(Directory.Exists(_dir) && Directory.EnumerateFileSystemEntries(_dir).Any(), Is.False,
            "nothing written");
    }

    [Test]
    public void ARankTooLargeForItsModuleIsNamed()
    {
        var config = new LoraConfig { Rank = 4, TargetModules = ["layers.5"], RankPattern = [new("layers.5", 11)] };
        var ex = Assert.Throws<ArgumentException>(() => LoraModel.GetPeftModel(Mlp.Blog(new TorchGenerator(0)), config,
            new TorchGenerator(1)));
        Assert.That(ex!.Message, Does.Contain("rank 11").And.Contain("layers.5"));
    }

    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"rank_pattern\":{\"x\":0}}", "rank_pattern")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"rank_pattern\":{\"x\":2.5}}",
        "rank_pattern")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"rank_pattern\":[1]}", "rank_pattern")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"rank_pattern\":{\"(\":2}}", "rank_pattern")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"alpha_pattern\":{\"x\":\"8\"}}",
        "alpha_pattern")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"alpha_pattern\":{\"x\":1e300}}",
        "alpha_pattern")]
    public void BadPatternsAreNamed(string json, string field)
    {
        var ex = Assert.Throws<InvalidDataFormatException>(() =>
            AdapterConfigFile.Parse(System.Text.Encoding.UTF8.GetBytes(json), "adapter_config.json"));
        Assert.That(ex!.Field, Is.EqualTo(field));
    }
}
