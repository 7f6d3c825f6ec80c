using System.Text.Json;
using LoRA.Managed.Models;
using LoRA.Managed.IO;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using static LoRA.Managed.Tests.Lora.LoraTestHelpers;

namespace LoRA.Managed.Tests.Lora;

/// <summary>Saving and restoring adapters in PEFT's layout.</summary>
public class AdapterFilesTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Path.Combine(TestContext.CurrentContext.WorkDirectory, $"adapter-{Guid.NewGuid():N}");

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static PeftModel Trained(LoraConfig config, ulong baseSeed = 0)
    {
        var peft = LoraModel.GetPeftModel(Mlp.Blog(new TorchGenerator(baseSeed)), config, new TorchGenerator(1));
        var g = new TorchGenerator(99);
        foreach (var p in peft.TrainableParameters()) g.FillUniform(p.Data, -0.1f, 0.1f);   // stands in for training
        return peft;
    }

    private static readonly LoraConfig Blog = new() { Rank = 4, Alpha = 1, Scaling = LoraScaling.Alpha,
        TargetModules = ["layers.5"] };

    [Test]
    public void WritesPeftKeysMetadataAndConfig()
    {
        Trained(Blog).SaveAdapter(_dir);
        var file = SafeTensors.Read(Path.Combine(_dir, "adapter_model.safetensors"));
        Assert.That(file.Tensors.Keys,
            Is.EquivalentTo(new[] { "base_model.model.layers.5.lora_A.weight",
                "base_model.model.layers.5.lora_B.weight" }));
        Assert.That(file.Tensors["base_model.model.layers.5.lora_A.weight"].Shape, Is.EqualTo(new[] { 4, 256 }));
        Assert.That(file.Metadata["format"], Is.EqualTo("pt"));
        Assert.That(file.Metadata[AdapterFiles.ChecksumKey], Has.Length.EqualTo(64));

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "adapter_config.json")));
        var root = json.RootElement;
        Assert.That(root.GetProperty("peft_type").GetString(), Is.EqualTo("LORA"));
        Assert.That(root.GetProperty("r").GetInt32(), Is.EqualTo(4));
        Assert.That(root.GetProperty("lora_alpha").GetDouble(), Is.EqualTo(4.0),
            "PEFT's α/r must equal the blog's scale 1");
        Assert.That(root.GetProperty("use_rslora").GetBoolean(), Is.False);
        Assert.That(root.GetProperty("use_dora").GetBoolean(), Is.False);
        Assert.That(root.GetProperty("fan_in_fan_out").GetBoolean(), Is.False);
        Assert.That(root.GetProperty("bias").GetString(), Is.EqualTo("none"));
        Assert.That(root.GetProperty("init_lora_weights").GetBoolean(), Is.True);
        Assert.That(root.GetProperty("target_modules")[0].GetString(), Is.EqualTo("layers.5"));
        Assert.That(root.GetProperty("modules_to_save").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(root.GetProperty("task_type").ValueKind, Is.EqualTo(JsonValueKind.Null));
    }

    [TestCase(LoraScaling.RsLora, 2.0, 2.0, true)]
    [TestCase(LoraScaling.AlphaOverRank, 16.0, 16.0, false)]
    public void LoraAlphaKeepsTheScale(LoraScaling scaling, double alpha, double written, bool rs)
    {
        var config = new LoraConfig { Rank = 4, Alpha = alpha, Scaling = scaling, TargetModules = ["layers.5"] };
        var back = AdapterConfigFile.Parse(System.Text.Encoding.UTF8.GetBytes(AdapterConfigFile.ToJson(config)), "cfg");
        Assert.That(AdapterConfigFile.PeftLoraAlpha(config), Is.EqualTo(written));
        Assert.That(back.UseRsLora, Is.EqualTo(rs));
        Assert.That(back.Scale, Is.EqualTo(config.Scale).Within(1e-12));
    }

    [TestCase(LoraInit.Default)]
    [TestCase(LoraInit.Svd)]
    [TestCase(LoraInit.Pissa)]
    [TestCase(LoraInit.Olora)]
    [TestCase(LoraInit.LoftQ)]
    public void SaveThenLoadRestoresTheAdapterBitForBit(LoraInit init)
    {
        var trained = Trained(Blog with { Init = init, TargetModules = ["layers.3", "layers.5"],
            Bias = LoraBias.LoraOnly });
        trained.SaveAdapter(_dir);
        var x = Random(new TorchGenerator(4), 3, 784);
        Tensor expected = trained.Forward(x);

        var loaded = PeftModel.FromPretrained(Mlp.Blog(new TorchGenerator(0)), _dir);
        var want = trained.StateDict();
        foreach (var (name, t) in loaded.StateDict())
            Assert.That(t.Array, Is.EqualTo(want[name].Array), name);
        Assert.That(loaded.Config.Scale, Is.EqualTo(1.0).Within(1e-12));
        Assert.That(loaded.Config.Init, Is.EqualTo(init == LoraInit.Svd ? LoraInit.Default : init));
        Assert.That(MaxAbsDiff(loaded.Forward(x), expected), Is.EqualTo(0f));
        Assert.That(loaded.TrainableParameterCount, Is.EqualTo(trained.TrainableParameterCount));
    }

    [Test]
    public void BiasAllAndModulesToSaveAreSavedAndRestored()
    {
        var config = new LoraConfig { Rank = 2, TargetModules = ["layers.3"], Bias = LoraBias.All,
            ModulesToSave = ["layers.5"] };
        var trained = Trained(config);
        trained.SaveAdapter(_dir);
        var keys = SafeTensors.Read(Path.Combine(_dir, "adapter_model.safetensors")).Tensors.Keys;
        Assert.That(keys, Is.EquivalentTo(new[]
        {
            "base_model.model.layers.1.bias", "base_model.model.layers.3.base_layer.bias",
            "base_model.model.layers.3.lora_A.weight", "base_model.model.layers.3.lora_B.weight",
            "base_model.model.layers.5.weight", "base_model.model.layers.5.bias",
        }));
        var loaded = PeftModel.FromPretrained(Mlp.Blog(new TorchGenerator(0)), _dir);
        var want = trained.StateDict();
        foreach (var (name, t) in loaded.StateDict()) Assert.That(t.Array, Is.EqualTo(want[name].Array), name);
    }

    [Test]
    public void AdapterThatDoesNotFitIsRefusedNamingTheTensor()
    {
        Trained(Blog).SaveAdapter(_dir);
        var smaller = new Mlp(new TorchGenerator(0), 784, 512, 128, 10);
        var ex = Assert.Throws<InvalidDataFormatException>(() => PeftModel.FromPretrained(smaller, _dir,
            verifyBaseChecksum: false));
        Assert.That(ex!.Field, Is.EqualTo("base_model.model.layers.5.lora_A.weight"));
        Assert.That(ex.Message, Does.Contain("[4, 256]").And.Contain("[4, 128]"));
        Assert.That(smaller.Layers[5], Is.TypeOf<Linear>(), "the model is untouched");
    }

    [Test]
    public void DifferentBaseIsRefusedUnlessTheCheckIsWaived()
    {
        Trained(Blog).SaveAdapter(_dir);
        var other = Mlp.Blog(new TorchGenerator(5));
        var ex = Assert.Throws<InvalidOperationException>(() => PeftModel.FromPretrained(other, _dir));
        Assert.That(ex!.Message, Does.Contain("checksum").And.Contain("verifyBaseChecksum"));
        Assert.That(other.Layers[5], Is.TypeOf<Linear>());
        var loaded = PeftModel.FromPretrained(other, _dir, verifyBaseChecksum: false);
        Assert.That(loaded.LoraLayers().Single().Key, Is.EqualTo("layers.5"));
    }

    [TestCase("{\"peft_type\":\"IA3\",\"r\":4,\"target_modules\":[\"x\"]}", "peft_type")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":0,\"target_modules\":[\"x\"]}", "r")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":\"x(\"}", "target_modules")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"bias\":\"some\"}", "bias")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"use_dora\":1}", "use_dora")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"init_lora_weights\":\"corda\"}",
        "init_lora_weights")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"lora_alpha\":\"8\"}", "lora_alpha")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"layers_to_transform\":[-1]}",
        "layers_to_transform")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"layers_to_transform\":\"0\"}",
        "layers_to_transform")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"exclude_modules\":\"lm_head)\"}",
        "exclude_modules")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"layers_to_transform\":[0]," +
        "\"layers_pattern\":\"\"}", "layers_pattern")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"loftq_config\":{\"loftq_bits\":4}}",
        "loftq_config")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"layer_replication\":[[0,2]]}",
        "layer_replication")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"lora_bias\":true}", "lora_bias")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"use_qalora\":true}", "use_qalora")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"target_parameters\":[\"w\"]}",
        "target_parameters")]
    [TestCase("{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"trainable_token_indices\":[1]}",
        "trainable_token_indices")]
    public void BadConfigFieldsAreNamed(string json, string field)
    {
        var ex = Assert.Throws<InvalidDataFormatException>(() =>
            AdapterConfigFile.Parse(System.Text.Encoding.UTF8.GetBytes(json), "adapter_config.json"));
        Assert.That(ex!.Field, Is.EqualTo(field));
        Assert.That(ex.File, Is.EqualTo("adapter_config.json"));
    }

    // A file PEFT writes with every per-layer field at its default loads: the refusal is for values that change
    // the adapter, not for the keys themselves.
    [Test]
    public void PerLayerFieldsAtTheirDefaultsLoad()
    {
        const string json = "{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"x\"],\"rank_pattern\":{},"
            + "\"alpha_pattern\":{},\"layers_to_transform\":null,\"layers_pattern\":\"layers\"," +
            "\"exclude_modules\":null,"
            + "\"loftq_config\":{},\"megatron_config\":null,\"megatron_core\":\"megatron.core\"," +
            "\"layer_replication\":null,"
            + "\"lora_bias\":false,\"use_qalora\":false,\"qalora_group_size\":16,\"target_parameters\":[],"
            + "\"runtime_config\":{\"ephemeral_gpu_offload\":false},\"trainable_token_indices\":null}";
        var config = AdapterConfigFile.Parse(System.Text.Encoding.UTF8.GetBytes(json), "adapter_config.json");
        Assert.That(config.Rank, Is.EqualTo(4));
        Assert.That(config.TargetModules, Is.EqualTo(new[] { "x" }));
    }
}
