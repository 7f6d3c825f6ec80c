using System.Text.Json.Nodes;
using LoRA.Managed.IO;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;

namespace LoRA.Managed.Tests.Models;

/// <summary>Bad folders are refused before any work, with one line naming the file and the field or tensor.</summary>
public class HfLoadErrorTests
{
    private static HfFixtures.TempDir Copy(string fixture)
    {
        var dir = new HfFixtures.TempDir();
        foreach (string f in Directory.GetFiles(HfFixtures.Folder(fixture)))
            File.Copy(f, Path.Combine(dir.Path, Path.GetFileName(f)));
        return dir;
    }

    private static void EditConfig(string dir, Action<JsonObject> edit)
    {
        string path = Path.Combine(dir, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(json);
        File.WriteAllText(path, json.ToJsonString());
    }

    private static InvalidDataFormatException Refused(string dir)
    {
        var ex = Assert.Throws<InvalidDataFormatException>(() => HfModel.Load(dir))!;
        Assert.That(ex.Message, Does.Not.Contain("\n"), "one line");
        return ex;
    }

    [Test]
    public void UnsupportedModelTypeNamesFileAndField()
    {
        using var dir = Copy("llama-gqa-tied");
        EditConfig(dir.Path, c => c["model_type"] = "bert");
        var ex = Refused(dir.Path);
        Assert.That(ex.File, Does.EndWith("config.json"));
        Assert.That(ex.Field, Is.EqualTo("model_type"));
        Assert.That(ex.Message, Does.Contain("'bert' is not supported"));
    }

    [TestCase("dynamic")]
    [TestCase("yarn")]
    public void UnsupportedRopeScalingIsRefused(string kind)
    {
        using var dir = Copy("llama-gqa-tied");
        EditConfig(dir.Path, c => c["rope_scaling"] = new JsonObject { ["rope_type"] = kind, ["factor"] = 2.0 });
        var ex = Refused(dir.Path);
        Assert.That(ex.Field, Is.EqualTo("rope_scaling.rope_type"));
    }

    [Test]
    public void HeadsThatDoNotDivideAreRefused()
    {
        using var dir = Copy("llama-gqa-tied");
        EditConfig(dir.Path, c => c["num_key_value_heads"] = 3);
        Assert.That(Refused(dir.Path).Field, Is.EqualTo("num_key_value_heads"));
    }

    [Test]
    public void MisShapedTensorIsNamedWithItsFile()
    {
        using var dir = Copy("llama-gqa-tied");
        EditConfig(dir.Path, c => c["intermediate_size"] = 25);
        var ex = Refused(dir.Path);
        Assert.That(ex.File, Does.EndWith("model.safetensors"));
        Assert.That(ex.Field, Is.EqualTo("model.layers.0.mlp.gate_proj.weight"));
        Assert.That(ex.Message, Does.Contain("[24, 16] in the file but the config gives [25, 16]"));
    }

    [Test]
    public void MissingTensorIsNamed()
    {
        using var dir = Copy("llama-gqa-tied");
        EditConfig(dir.Path, c => c["tie_word_embeddings"] = false);
        var ex = Refused(dir.Path);
        Assert.That(ex.Field, Is.EqualTo("lm_head.weight"));
        Assert.That(ex.Message, Does.Contain("missing"));
    }

    [Test]
    public void UnexpectedTensorIsNamed()
    {
        using var dir = Copy("llama-gqa-tied");
        EditConfig(dir.Path, c => c["num_hidden_layers"] = 1);
        var ex = Refused(dir.Path);
        Assert.That(ex.Field, Does.StartWith("model.layers.1."));
        Assert.That(ex.Message, Does.Contain("unexpected tensor"));
    }

    [Test]
    public void MissingWeightsAndConfigAreFileNotFound()
    {
        using var dir = Copy("llama-gqa-tied");
        File.Delete(Path.Combine(dir.Path, "model.safetensors"));
        Assert.That(Assert.Throws<FileNotFoundException>(() => HfModel.Load(dir.Path))!.Message,
            Does.Contain("model.safetensors"));
        File.Delete(Path.Combine(dir.Path, "config.json"));
        Assert.That(Assert.Throws<FileNotFoundException>(() => HfModel.Load(dir.Path))!.Message,
            Does.Contain("config.json"));
    }

    [Test]
    public void ShardIndexNamingAnAbsentTensorIsRefused()
    {
        using var dir = Copy("llama3-rope-sharded");
        string index = Path.Combine(dir.Path, HfWeights.IndexFile);
        var json = JsonNode.Parse(File.ReadAllText(index))!.AsObject();
        json["weight_map"]!.AsObject()["model.extra.weight"] = "model-00001-of-00002.safetensors";
        File.WriteAllText(index, json.ToJsonString());
        var ex = Refused(dir.Path);
        Assert.That(ex.Field, Is.EqualTo("weight_map.model.extra.weight"));
    }

    [Test]
    public void NamesWithoutTheBasePrefixLoadLikeTheHubsGpt2File()
    {
        // gpt2-tiny's file says h.0.attn.c_attn.weight (as the Hub's gpt2); the module is transformer.h.0.attn.c_attn.
        CausalLm model = HfModel.Load(HfFixtures.Folder("gpt2-tiny"));
        var names = model.NamedParameters().Select(p => p.Key).ToList();
        Assert.That(names, Does.Contain("transformer.h.0.attn.c_attn.weight"));
        Assert.That(names, Does.Not.Contain("lm_head.weight"));
        Assert.That(model.StateDict()["transformer.h.0.attn.c_attn.weight"].Shape, Is.EqualTo(new[] { 16, 48 }),
            "Conv1D (in, out)");
        Assert.That(model.NamedModules().Select(m => m.Key), Does.Contain("transformer.h.1.mlp.c_proj"));
    }

    [Test]
    public void LlamaModuleNamesAreHuggingFaces()
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder("qwen2-bias-bf16"));
        var names = model.NamedParameters().Select(p => p.Key).ToHashSet();
        foreach (string n in new[] { "model.embed_tokens.weight", "model.layers.1.self_attn.q_proj.bias",
            "model.layers.1.self_attn.k_proj.bias",
                     "model.layers.0.mlp.gate_proj.weight", "model.layers.0.post_attention_layernorm.weight",
                     "model.norm.weight", "lm_head.weight" })
            Assert.That(names, Does.Contain(n));
        Assert.That(names, Does.Not.Contain("model.layers.0.self_attn.o_proj.bias"), "Qwen2 has no o_proj bias");
    }
}

/// <summary>Config-only variants of the Llama family.</summary>
public class HfConfigVariantTests
{
    [Test]
    public void MistralIsLlamaWithItsSlidingWindowAsTheContextLimit()
    {
        using var dir = new HfFixtures.TempDir();
        foreach (string f in Directory.GetFiles(HfFixtures.Folder("llama-gqa-tied")))
            File.Copy(f, Path.Combine(dir.Path, Path.GetFileName(f)));
        string config = Path.Combine(dir.Path, "config.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(config))!.AsObject();
        json["model_type"] = "mistral";
        json["sliding_window"] = 16;
        File.WriteAllText(config, json.ToJsonString());
        CausalLm mistral = HfModel.Load(dir.Path), llama = HfModel.Load(HfFixtures.Folder("llama-gqa-tied"));
        Assert.That(mistral.Config.MaxContext, Is.EqualTo(16));
        Assert.That(llama.Config.MaxContext, Is.EqualTo(32));
        int[] ids = HfFixtures.Ints(HfFixtures.Expected("llama-gqa-tied").GetProperty("ids"));
        Assert.That(mistral.Score(ids, 16).MeanNll, Is.EqualTo(llama.Score(ids, 16).MeanNll));
        Assert.Throws<ArgumentException>(() => mistral.Score(ids, 24),
            "windows beyond the sliding window are refused, not silently wrong");
    }
}
