using System.Text.Json;
using LoRA.Managed.IO;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using LoRA.Managed.Tests.Docs;

namespace LoRA.Managed.Tests.Lora;

/// <summary>
/// Which modules an adapter lands on (issue 15): PEFT's <c>target_modules="all-linear"</c> (every Linear/Conv1D but
/// the output layer) and <c>exclude_modules</c> (list form: equal, or a suffix after a dot), in memory and in
/// <c>adapter_config.json</c>.
/// </summary>
public class TargetSelectionTests
{
    private sealed class WithHead : Module
    {
        public WithHead(TorchGenerator g)
        {
            RegisterModule("body", new Linear(6, 5, g));
            RegisterModule("lm_head", new Linear(5, 4, g));
        }

        public override Tensor Forward(Tensor input) => throw new NotSupportedException();
    }

    private static string[] Targets(Module model, LoraConfig config) =>
        LoraModel.GetPeftModel(model, config, new TorchGenerator(1)).LoraLayers().Select(p => p.Key).ToArray();

    [Test]
    public void AllLinearTakesEveryLinearButTheOutputLayer()
    {
        Assert.That(
            Targets(Mlp.Blog(new TorchGenerator(0)),
                new LoraConfig { Rank = 2, TargetModules = [LoraConfig.AllLinear] }),
            Is.EqualTo(new[] { "layers.1", "layers.3", "layers.5" }));
        Assert.That(Targets(new WithHead(new TorchGenerator(0)),
            new LoraConfig { Rank = 2, TargetModules = [LoraConfig.AllLinear] }),
            Is.EqualTo(new[] { "body" }));
    }

    [Test]
    public void AllLinearOnGpt2TakesEveryConv1DOfEveryBlock()
    {
        var model = HfModel.Load(Path.Combine(RepoPaths.Root, "tests", "fixtures", "hf", "gpt2-tiny"));
        string[] linear = model.NamedModules().Where(p => p.Value is Linear).Select(p => p.Key)
            .Where(n => n != "lm_head").ToArray();
        string[] targets = Targets(model, new LoraConfig { Rank = 2, TargetModules = [LoraConfig.AllLinear] });
        Assert.That(targets, Is.EquivalentTo(linear));
        Assert.That(targets, Does.Contain("transformer.h.0.attn.c_attn").And.Contain("transformer.h.0.mlp.c_proj"));
    }

    [Test]
    public void ExcludeModulesRemovesByNameOrDottedSuffix()
    {
        var config = new LoraConfig { Rank = 2, TargetModules = [LoraConfig.AllLinear],
            ExcludeModules = ["layers.3", "5"] };
        Assert.That(Targets(Mlp.Blog(new TorchGenerator(0)), config), Is.EqualTo(new[] { "layers.1" }));
        var none = new LoraConfig { Rank = 2, TargetModules = ["layers.5"], ExcludeModules = ["layers.5"] };
        var ex = Assert.Throws<ArgumentException>(() => Targets(Mlp.Blog(new TorchGenerator(0)), none));
        Assert.That(ex!.Message, Does.Contain("exclude_modules"));
    }

    [Test]
    public void BothRoundTripThroughAdapterConfigAsPeftWritesThem()
    {
        var config = new LoraConfig { Rank = 2, Alpha = 4, TargetModules = [LoraConfig.AllLinear],
            ExcludeModules = ["layers.3"] };
        string json = AdapterConfigFile.ToJson(config);
        using var doc = JsonDocument.Parse(json);
        Assert.That(doc.RootElement.GetProperty("target_modules").GetString(), Is.EqualTo("all-linear"));
        Assert.That(doc.RootElement.GetProperty("exclude_modules").EnumerateArray().Select(e => e.GetString()),
            Is.EqualTo(new[] { "layers.3" }));
        var back = AdapterConfigFile.Parse(System.Text.Encoding.UTF8.GetBytes(json), "adapter_config.json");
        Assert.That(back.TargetModules, Is.EqualTo(new[] { LoraConfig.AllLinear }));
        Assert.That(back.ExcludeModules, Is.EqualTo(new[] { "layers.3" }));
        Assert.That(Targets(Mlp.Blog(new TorchGenerator(0)), back), Is.EqualTo(new[] { "layers.1", "layers.5" }));
    }

    [Test]
    public void AllLinearWithOtherTargetsIsRefused() =>
        Assert.Throws<ArgumentException>(() =>
            new LoraConfig { TargetModules = [LoraConfig.AllLinear, "layers.1"] }.Validate());

    // PEFT's check_target_module_exists: the index after the layer container, by layers_pattern or, without one,
    // re.match(r".*\.[^.]*\.(\d+)\.", name).
    [TestCase("model.layers.3.self_attn.q_proj", new[] { 3 }, new string[0], true)]
    [TestCase("model.layers.3.self_attn.q_proj", new[] { 0, 1 }, new string[0], false)]
    [TestCase("transformer.h.1.attn.c_attn", new[] { 1 }, new[] { "h" }, true)]
    [TestCase("transformer.h.1.attn.c_attn", new[] { 1 }, new[] { "layers" }, false)]
    [TestCase("transformer.h.1.attn.c_attn", new[] { 1 }, new[] { "layers", "h" }, true)]
    [TestCase("layers.1", new[] { 1 }, new string[0], false)]                 // no container before the index
    [TestCase("model.layers.12.mlp.down_proj", new[] { 1, 2 }, new string[0], false)]
    public void LayerIndexIsFoundAsPeftFindsIt(string name, int[] layers, string[] pattern, bool expected) =>
        Assert.That(new LoraConfig { TargetModules = ["x"], LayersToTransform = layers,
            LayersPattern = pattern }.InTransformedLayers(name),
            Is.EqualTo(expected));

    [Test]
    public void LayersToTransformKeepsOnlyThoseBlocksAndRoundTrips()
    {
        var config = new LoraConfig { Rank = 2, TargetModules = ["c_attn", "c_fc"], LayersToTransform = [1],
            LayersPattern = ["h"] };
        var model = HfModel.Load(Path.Combine(RepoPaths.Root, "tests", "fixtures", "hf", "gpt2-tiny"));
        Assert.That(Targets(model, config),
            Is.EqualTo(new[] { "transformer.h.1.attn.c_attn", "transformer.h.1.mlp.c_fc" }));
        string json = AdapterConfigFile.ToJson(config);
        using var doc = JsonDocument.Parse(json);
        Assert.That(doc.RootElement.GetProperty("layers_to_transform").EnumerateArray().Select(e => e.GetInt32()),
            Is.EqualTo(new[] { 1 }));
        Assert.That(doc.RootElement.GetProperty("layers_pattern").GetString(), Is.EqualTo("h"));
        var back = AdapterConfigFile.Parse(System.Text.Encoding.UTF8.GetBytes(json), "adapter_config.json");
        Assert.That((back.LayersToTransform, back.LayersPattern), Is.EqualTo((new[] { 1 }, new[] { "h" })));
        var single = AdapterConfigFile.Parse(System.Text.Encoding.UTF8.GetBytes(
            "{\"peft_type\":\"LORA\",\"r\":2,\"target_modules\":[\"c_attn\"],\"layers_to_transform\":0}"),
            "adapter_config.json");
        Assert.That(single.LayersToTransform, Is.EqualTo(new[] { 0 }));
    }

    [Test]
    public void LayersToTransformThatLeavesNothingIsNamed()
    {
        // "5" matches layers.5 by suffix, the only form layers_to_transform filters (as in PEFT).
        var config = new LoraConfig { Rank = 2, TargetModules = ["5"], LayersToTransform = [0] };
        var ex = Assert.Throws<ArgumentException>(() => Targets(Mlp.Blog(new TorchGenerator(0)), config));
        Assert.That(ex!.Message, Does.Contain("layers_to_transform"));
    }

    [Test]
    public void ARegularExpressionTargetMatchesWholeNamesAsReFullmatch()
    {
        Assert.That(
            Targets(Mlp.Blog(new TorchGenerator(0)), new LoraConfig { Rank = 2, TargetModulesRegex = @"layers\.[35]" }),
            Is.EqualTo(new[] { "layers.3", "layers.5" }));
        // re.fullmatch, not re.search: "ayers\.5" is inside "layers.5" but matches no whole name.
        var ex = Assert.Throws<ArgumentException>(() => Targets(Mlp.Blog(new TorchGenerator(0)),
            new LoraConfig { Rank = 2, TargetModulesRegex = @"ayers\.5" }));
        Assert.That(ex!.Message, Does.Contain(@"regex 'ayers\.5' matches no module"));
    }

    [Test]
    public void ARegularExpressionSelectsWhatTheEquivalentListSelects()
    {
        var model = HfModel.Load(Path.Combine(RepoPaths.Root, "tests", "fixtures", "hf", "llama-gqa-tied"));
        string[] byList = Targets(model, new LoraConfig { Rank = 2, TargetModules = ["q_proj", "v_proj"] });
        model = HfModel.Load(Path.Combine(RepoPaths.Root, "tests", "fixtures", "hf", "llama-gqa-tied"));
        string[] byRegex = Targets(model, new LoraConfig { Rank = 2, TargetModulesRegex = @".*\.(q_proj|v_proj)" });
        Assert.That(byRegex, Is.EqualTo(byList));
        Assert.That(byRegex, Has.Length.GreaterThan(1));
    }

    [Test]
    public void ARegularExpressionExcludeRemovesWholeNameMatches()
    {
        var config = new LoraConfig { Rank = 2, TargetModules = [LoraConfig.AllLinear],
            ExcludeModulesRegex = @"layers\.(3|5)" };
        Assert.That(Targets(Mlp.Blog(new TorchGenerator(0)), config), Is.EqualTo(new[] { "layers.1" }));
    }

    [Test]
    public void LayersToTransformFiltersOnlySuffixMatchesAsPeftDoes()
    {
        // PEFT's check_target_module_exists applies layers_to_transform in its suffix branch only: a target given as
        // the module's whole name, or as a regular expression, is adapted whatever its layer.
        Assert.That(
            Targets(Mlp.Blog(new TorchGenerator(0)),
                new LoraConfig { Rank = 2, TargetModules = ["layers.5"], LayersToTransform = [0] }),
            Is.EqualTo(new[] { "layers.5" }));
        Assert.That(
            Targets(Mlp.Blog(new TorchGenerator(0)),
                new LoraConfig { Rank = 2, TargetModulesRegex = @"layers\.5", LayersToTransform = [0] }),
            Is.EqualTo(new[] { "layers.5" }));
    }

    [Test]
    public void RegularExpressionsRoundTripThroughAdapterConfigAsStrings()
    {
        var config = new LoraConfig { Rank = 2, Alpha = 4, TargetModulesRegex = @"layers\.[135]",
            ExcludeModulesRegex = @"layers\.3" };
        string json = AdapterConfigFile.ToJson(config);
        using var doc = JsonDocument.Parse(json);
        Assert.That(doc.RootElement.GetProperty("target_modules").GetString(), Is.EqualTo(@"layers\.[135]"));
        Assert.That(doc.RootElement.GetProperty("exclude_modules").GetString(), Is.EqualTo(@"layers\.3"));
        var back = AdapterConfigFile.Parse(System.Text.Encoding.UTF8.GetBytes(json), "adapter_config.json");
        Assert.That((back.TargetModulesRegex, back.ExcludeModulesRegex, back.TargetModules.Count),
            Is.EqualTo((@"layers\.[135]", @"layers\.3", 0)));
        Assert.That(Targets(Mlp.Blog(new TorchGenerator(0)), back), Is.EqualTo(new[] { "layers.1", "layers.5" }));
    }

    [TestCase("{\"peft_type\":\"LORA\",\"r\":2,\"target_modules\":\"(?P<n>q)_proj\"}", "target_modules")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":2,\"target_modules\":\"(q_proj\"}", "target_modules")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":2,\"target_modules\":\"\"}", "target_modules")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":2,\"target_modules\":[\"q_proj\"],\"exclude_modules\":\"[\"}",
        "exclude_modules")]
    public void AnUnreadableRegularExpressionIsRefusedByName(string json, string field)
    {
        var ex = Assert.Throws<InvalidDataFormatException>(() =>
            AdapterConfigFile.Parse(System.Text.Encoding.UTF8.GetBytes(json), "adapter_config.json"));
        Assert.That(ex!.Message, Does.Contain("adapter_config.json").And.Contain(field));
    }

    [Test]
    public void AListAndARegularExpressionTogetherAreRefused()
    {
        var ex = Assert.Throws<ArgumentException>(() => new LoraConfig { TargetModules = ["q_proj"],
            TargetModulesRegex = "q_proj" }.Validate());
        Assert.That(ex!.Message, Does.Contain("not both"));
        Assert.Throws<ArgumentException>(() => new LoraConfig { TargetModulesRegex = "(" }.Validate());
    }
}

