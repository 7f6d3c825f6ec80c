using System.Text.Json;
using LoRA.Managed.Tests.Docs;
using LoRA.Managed.Tests.Models;

namespace LoRA.Managed.Tests.Cli;

/// <summary><c>lora lm-eval</c>, <c>generate</c> and <c>lm-finetune</c> as a user runs them, on stories260K
/// (../shared).</summary>
[NonParallelizable]
public class HfCommandsTests
{
    private static JsonElement Json(string path) => JsonDocument.Parse(File.ReadAllText(path)).RootElement;

    [Test]
    public void GenerateStreamsTheGreedyStoryAboutLily()
    {
        using var dir = new HfFixtures.TempDir();
        string json = Path.Combine(dir.Path, "gen.json");
        var (code, output, err) = LoraCli.Run("generate", "--model", HfFixtures.Stories260K, "--prompt",
            "Once upon a time", "--max-new-tokens", "40", "--json", json);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output, Does.StartWith("Once upon a time, there was a little girl named Lily."));
        var r = Json(json);
        var expected = HfFixtures.Json("stories260K.json");
        Assert.That(HfFixtures.Ints(r.GetProperty("prompt_ids")),
            Is.EqualTo(HfFixtures.Ints(expected.GetProperty("prompt"))));
        Assert.That(HfFixtures.Ints(r.GetProperty("new_ids")),
            Is.EqualTo(HfFixtures.Ints(expected.GetProperty("greedy"))));
        Assert.That(r.GetProperty("text").GetString(), Does.Contain("named Lily"));
    }

    [Test]
    public void LmEvalReportsTokensNllAndPerplexity()
    {
        using var dir = new HfFixtures.TempDir();
        string text = Path.Combine(dir.Path, "story.txt"), json = Path.Combine(dir.Path, "eval.json");
        File.WriteAllText(text,
            "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.\n");
        var (code, _, err) = LoraCli.Run("lm-eval", "--model", HfFixtures.Stories260K, "--data", text, "--context", "8",
            "--json", json);
        Assert.That(code, Is.EqualTo(0), err);
        var r = Json(json);
        long tokens = r.GetProperty("tokens").GetInt64();
        double nll = r.GetProperty("mean_nll").GetDouble();
        Assert.That(tokens, Is.GreaterThan(10));
        Assert.That(nll, Is.GreaterThan(0).And.LessThan(3), "a story in the model's own style");
        Assert.That(r.GetProperty("perplexity").GetDouble(), Is.EqualTo(Math.Exp(nll)).Within(1e-9));
    }

    [Test]
    public void LmFinetuneOnPromptCompletionWritesAPeftAdapterThatGenerateUses()
    {
        using var dir = new HfFixtures.TempDir();
        string data = Path.Combine(dir.Path, "sft.jsonl"), adapter = Path.Combine(dir.Path, "adapter"),
            json = Path.Combine(dir.Path, "ft.json");
        File.WriteAllLines(data,
            Enumerable.Repeat("{\"prompt\": \"Q: What is the name of the dog? A:\", \"completion\": \" The dog " +
                "is called Max.\"}", 40));
        var (code, _, err) = LoraCli.Run("lm-finetune", "--model", HfFixtures.Stories260K, "--data", data, "--targets",
            "q_proj,v_proj", "--rank", "4",
            "--alpha", "8", "--steps", "30", "--lr", "5e-3", "--batch-size", "8", "--out", adapter, "--json", json);
        Assert.That(code, Is.EqualTo(0), err);
        var r = Json(json);
        foreach (string key in new[] { "first_loss", "last_loss", "trainable_params", "total_params",
            "tokens_per_second" })
            Assert.That(r.TryGetProperty(key, out _), key);
        Assert.That(r.GetProperty("last_loss").GetDouble(), Is.LessThan(r.GetProperty("first_loss").GetDouble() / 2));
        Assert.That(r.GetProperty("trainable_params").GetInt64(), Is.EqualTo(5 * 2 * 4 * (64 + 64) - 5 * 4 * 32),
            "q (64→64) and v (64→32) at r 4 in 5 layers");
        var (genCode, output, genErr) = LoraCli.Run("generate", "--model", HfFixtures.Stories260K, "--adapter", adapter,
            "--prompt", "Q: What is the name of the dog? A:", "--max-new-tokens", "12");
        Assert.That(genCode, Is.EqualTo(0), genErr);
        Assert.That(output, Does.Contain("called Max"));
    }

    [Test]
    public void BadFoldersAndFilesGetOneLineAndExit2()
    {
        using var dir = new HfFixtures.TempDir();
        var (code, _, err) = LoraCli.Run("lm-eval", "--model", dir.Path, "--data", Path.Combine(dir.Path, "none.txt"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(err, Does.Contain("config.json"));
        string data = Path.Combine(dir.Path, "bad.jsonl");
        File.WriteAllText(data, "{\"prompt\": 1}\n");
        (code, _, err) = LoraCli.Run("lm-finetune", "--model", HfFixtures.Stories260K, "--data", data, "--steps", "1",
            "--out", Path.Combine(dir.Path, "a"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("line 1.prompt"));
        (code, _, err) = LoraCli.Run("generate", "--model", HfFixtures.Stories260K, "--prompt", "x", "--top-p", "0");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("TopP"));
    }
}

/// <summary><c>lora merge</c> on a Hugging Face folder: the merged folder scores as base + adapter did.</summary>
[NonParallelizable]
public class HfMergeCommandTests
{
    [Test]
    public void MergedFolderScoresLikeBasePlusAdapter()
    {
        using var dir = new HfFixtures.TempDir();
        string model = HfFixtures.Folder("gpt2-tiny"), adapter = Path.Combine(model, "adapter"),
            merged = Path.Combine(dir.Path, "merged");
        var (code, _, err) = LoraCli.Run("merge", "--model", model, "--adapter", adapter, "--out", merged);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(File.Exists(Path.Combine(merged, "config.json"))
            && File.Exists(Path.Combine(merged, "model.safetensors")));
        int[] ids = HfFixtures.Ints(HfFixtures.Expected("gpt2-tiny").GetProperty("ids"));
        var withAdapter = LoRA.Managed.Models.Hf.HfModel.Load(model);
        LoRA.Managed.Lora.PeftModel.FromPretrained(withAdapter, adapter);
        double expected = withAdapter.Score(ids).MeanNll;
        Assert.That(LoRA.Managed.Models.Hf.HfModel.Load(merged).Score(ids).MeanNll,
            Is.EqualTo(expected).Within(1e-5 * expected));
    }

    // Issue 15: an adapter_config.json that sets an option we do not implement (here layer_replication or lora_bias,
    // which would change the model or the adapter) is refused by name, never loaded wrong.
    [TestCase("layer_replication", "[[0, 1]]")]
    [TestCase("lora_bias", "true")]
    public void AnAdapterWithAnUnsupportedOptionExits2NamingIt(string field, string value)
    {
        using var dir = new HfFixtures.TempDir();
        string model = Path.Combine(RepoPaths.Root, "tests", "fixtures", "hf", "gpt2-tiny");
        string adapter = Path.Combine(dir.Path, "adapter");
        Directory.CreateDirectory(adapter);
        foreach (string file in Directory.GetFiles(Path.Combine(model, "adapter")))
            File.Copy(file, Path.Combine(adapter, Path.GetFileName(file)));
        string configPath = Path.Combine(adapter, "adapter_config.json");
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        config[field] = System.Text.Json.Nodes.JsonNode.Parse(value);
        File.WriteAllText(configPath, config.ToJsonString());
        string text = Path.Combine(dir.Path, "t.txt");
        File.WriteAllText(text, "hello world, hello world");
        var (code, _, err) = LoraCli.Run("lm-eval", "--model", model, "--adapter", adapter, "--data", text);
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(err, Does.Contain(field).And.Contain("adapter_config.json"));
    }

    // Issue 15: PEFT's per-layer selection from the command line: all-linear, exclude_modules, layers_to_transform.
    [Test]
    public void LmFinetuneTakesAllLinearExcludeAndLayers()
    {
        using var dir = new HfFixtures.TempDir();
        string data = Path.Combine(dir.Path, "t.txt"), adapter = Path.Combine(dir.Path, "adapter");
        File.WriteAllText(data,
            string.Concat(Enumerable.Repeat("Once upon a time there was a cat. The cat liked milk.\n", 20)));
        var (code, _, err) = LoraCli.Run("lm-finetune", "--model", HfFixtures.Stories260K, "--data", data, "--targets",
            "all-linear", "--exclude", "o_proj", "--layers", "1,3", "--rank", "2", "--steps", "1", "--context", "32",
            "--out", adapter);
        Assert.That(code, Is.EqualTo(0), err);
        var config = System.Text.Json.JsonDocument.Parse(
            File.ReadAllText(Path.Combine(adapter, "adapter_config.json"))).RootElement;
        Assert.That(config.GetProperty("target_modules").GetString(), Is.EqualTo("all-linear"));
        Assert.That(config.GetProperty("exclude_modules").EnumerateArray().Select(e => e.GetString()),
            Is.EqualTo(new[] { "o_proj" }));
        Assert.That(config.GetProperty("layers_to_transform").EnumerateArray().Select(e => e.GetInt32()),
            Is.EqualTo(new[] { 1, 3 }));
        var keys = LoRA.Managed.IO.SafeTensors.Read(Path.Combine(adapter, "adapter_model.safetensors")).Tensors.Keys
            .Where(k => k.EndsWith(".lora_A.weight", StringComparison.Ordinal)).ToArray();
        Assert.That(keys, Has.Length.EqualTo(2 * 6), "6 Linear layers (7 but o_proj) in each of layers 1 and 3");
        Assert.That(keys.All(k => k.Contains(".layers.1.") || k.Contains(".layers.3.")), Is.True);
        Assert.That(keys.Any(k => k.Contains("o_proj")), Is.False);
        (code, _, err) = LoraCli.Run("lm-finetune", "--model", HfFixtures.Stories260K, "--data", data, "--layers", "x",
            "--out", adapter);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("--layers"));
    }

    // Issue 15: DoRA from the command line; generate loads the DoRA adapter back.
    [Test]
    public void LmFinetuneWithUseDoraWritesPeftsMagnitudeKeys()
    {
        using var dir = new HfFixtures.TempDir();
        string data = Path.Combine(dir.Path, "t.txt"), adapter = Path.Combine(dir.Path, "adapter");
        File.WriteAllText(data,
            string.Concat(Enumerable.Repeat("Once upon a time there was a cat. The cat liked milk.\n", 20)));
        var (code, _, err) = LoraCli.Run("lm-finetune", "--model", HfFixtures.Stories260K, "--data", data, "--targets",
            "q_proj,v_proj",
            "--use-dora", "--rank", "2", "--steps", "2", "--context", "32", "--out", adapter);
        Assert.That(code, Is.EqualTo(0), err);
        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(adapter, "adapter_config.json"))).RootElement;
        Assert.That(config.GetProperty("use_dora").GetBoolean(), Is.True);
        var keys = LoRA.Managed.IO.SafeTensors.Read(
            Path.Combine(adapter, "adapter_model.safetensors")).Tensors.Keys.ToArray();
        Assert.That(keys.Count(k => k.EndsWith(".lora_magnitude_vector", StringComparison.Ordinal)), Is.EqualTo(2 * 5),
            "q and v in 5 layers");
        var (genCode, _, genErr) = LoraCli.Run("generate", "--model", HfFixtures.Stories260K, "--adapter", adapter,
            "--prompt", "Once upon a time", "--max-new-tokens", "4");
        Assert.That(genCode, Is.EqualTo(0), genErr);
    }
}
