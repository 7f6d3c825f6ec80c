using System.Text.Json;
using LoRA.Managed.Autograd;
using LoRA.Managed.IO;
using LoRA.Managed.Kernels;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;
using LoRA.Managed.Tests.Autograd;

namespace LoRA.Managed.Tests.Models;

/// <summary>
/// LoRA on the Hugging Face models: PEFT adapters written by the fixture script (PEFT's keys and config, GPT-2's Conv1D
/// with <c>fan_in_fan_out: true</c>) load here and reproduce the twin's adapted logits, NLL and greedy ids; adapters
/// trained here load in the twin (tests/fixtures/hf/*/ours-adapter and ours_adapter.json); merging writes a folder
/// that loads as a plain model with the adapted outputs.
/// </summary>
public class HfLoraTests
{
    public static readonly string[] Adapted = ["gpt2-tiny", "llama-gqa-tied"];

    [TestCaseSource(nameof(Adapted))]
    public void PeftAdapterReproducesTheTwin(string name)
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder(name));
        var peft = PeftModel.FromPretrained(model, Path.Combine(HfFixtures.Folder(name), "adapter"));
        var e = HfFixtures.Expected(name);
        int[] ids = HfFixtures.Ints(e.GetProperty("ids")), prompt = HfFixtures.Ints(e.GetProperty("prompt"));
        var a = e.GetProperty("adapter");
        float[] logits;
        using (Tape.NoGrad()) logits = model.Forward(ids, 1, ids.Length).Data.ToArray();
        HfModelTwinTests.AssertClose(logits, HfFixtures.Floats(a.GetProperty("logits")), 2e-4, name);
        double nll = a.GetProperty("mean_nll_context7").GetDouble();
        Assert.That(model.Score(ids, 7).MeanNll, Is.EqualTo(nll).Within(2e-4 * nll));
        Assert.That(model.Generate(prompt, new GenerationSettings { MaxNewTokens = 16 }),
            Is.EqualTo(HfFixtures.Ints(a.GetProperty("greedy"))));
        Assert.That(peft.Config.FanInFanOut, Is.EqualTo(name == "gpt2-tiny"));
        Assert.That(peft.Config.TaskType, Is.EqualTo("CAUSAL_LM"));
    }

    [TestCaseSource(nameof(Adapted))]
    public void MergedFolderLoadsAsAPlainModelWithTheAdaptedOutputs(string name)
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder(name));
        var original = model.StateDict().ToDictionary(p => p.Key, p => p.Value.Shape);
        var peft = PeftModel.FromPretrained(model, Path.Combine(HfFixtures.Folder(name), "adapter"));
        peft.MergeAndUnload();
        using var dir = new HfFixtures.TempDir();
        HfModelWriter.Save(model, dir.Path);
        Assert.That(File.Exists(Path.Combine(dir.Path, "config.json"))
            && File.Exists(Path.Combine(dir.Path, "generation_config.json")));
        var file = SafeTensors.Read(Path.Combine(dir.Path, "model.safetensors"));
        Assert.That(file.Tensors.Keys.Order(), Is.EqualTo(original.Keys.Order()), "same keys as the base");
        foreach (var (key, shape) in original) Assert.That(file.Tensors[key].Shape, Is.EqualTo(shape), key);
        CausalLm merged = HfModel.Load(dir.Path);
        var e = HfFixtures.Expected(name);
        int[] ids = HfFixtures.Ints(e.GetProperty("ids"));
        float[] logits;
        using (Tape.NoGrad()) logits = merged.Forward(ids, 1, ids.Length).Data.ToArray();
        HfModelTwinTests.AssertClose(logits, HfFixtures.Floats(e.GetProperty("adapter").GetProperty("logits")), 2e-4,
            name + " merged");
    }

    [TestCaseSource(nameof(Adapted))]
    public void GradientsReachOnlyTheAdapterAndTheLossFalls(string name)
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder(name));
        var peft = LoraModel.GetPeftModel(model, Config(name), new TorchGenerator(5));
        int[] ids = HfFixtures.Ints(HfFixtures.Expected(name).GetProperty("ids"));
        var opt = new AdamW(peft.TrainableParameters(), 1e-2, weightDecay: 0);
        double first = TrainStep(model, opt, ids), last = first;
        for (int i = 0; i < 20; i++) last = TrainStep(model, opt, ids);
        Assert.That(last, Is.LessThan(first - 0.1));
        foreach (var (n, p) in model.NamedParameters())
            Assert.That(p.HasGrad, Is.EqualTo(n.Contains(".lora_")), n);
        Assert.That(peft.TrainableParameterCount,
            Is.EqualTo(model.NamedParameters().Where(p => p.Key.Contains(".lora_")).Sum(p => (long)p.Value.Count)));
    }

    [TestCaseSource(nameof(Adapted))]
    public void ASteadyStateTrainingStepAllocatesNothing(string name)
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder(name));
        var peft = LoraModel.GetPeftModel(model, Config(name), new TorchGenerator(5));
        int[] ids = HfFixtures.Ints(HfFixtures.Expected(name).GetProperty("ids"));
        var opt = new AdamW(peft.TrainableParameters(), 1e-2, weightDecay: 0);
        var arena = new TensorArena();
        int saved = ComputeThreads.Max;
        ComputeThreads.Max = 1;
        try
        {
            Assert.That(SteadyState.AllocatedBytes(() => TrainStep(model, opt, ids, arena), 5), Is.Zero);
        }
        finally { ComputeThreads.Max = saved; }
    }

    [TestCaseSource(nameof(Adapted))]
    public void OurAdapterLoadsInTheTwinWithTheSameScore(string name)
    {
        // tests/fixtures/hf/<name>/ours-adapter was trained by TrainOurs below and scored by make_fixtures.py's twin.
        string ours = Path.Combine(HfFixtures.Folder(name), "ours-adapter");
        using (JsonDocument cfg = JsonDocument.Parse(File.ReadAllText(Path.Combine(ours, "adapter_config.json"))))
        {
            Assert.That(cfg.RootElement.GetProperty("task_type").GetString(), Is.EqualTo("CAUSAL_LM"));
            Assert.That(cfg.RootElement.GetProperty("fan_in_fan_out").GetBoolean(), Is.EqualTo(name == "gpt2-tiny"));
        }
        var twin = HfFixtures.Json(Path.Combine(name, "ours_adapter.json"));
        CausalLm model = HfModel.Load(HfFixtures.Folder(name));
        PeftModel.FromPretrained(model, ours);
        int[] ids = HfFixtures.Ints(HfFixtures.Expected(name).GetProperty("ids"));
        double expected = twin.GetProperty("mean_nll_context7").GetDouble();
        Assert.That(model.Score(ids, 7).MeanNll, Is.EqualTo(expected).Within(2e-4 * expected));
        // Training again from the same seed gives that adapter (up to float rounding across machines).
        using var dir = new HfFixtures.TempDir();
        TrainOurs(name, dir.Path);
        var again = SafeTensors.Read(Path.Combine(dir.Path, AdapterFiles.WeightsFileName));
        var committed = SafeTensors.Read(Path.Combine(ours, AdapterFiles.WeightsFileName));
        Assert.That(again.Tensors.Keys.Order(), Is.EqualTo(committed.Tensors.Keys.Order()));
        foreach (var (key, t) in committed.Tensors)
            HfModelTwinTests.AssertClose(again.Tensors[key].Data.ToArray(), t.Data.ToArray(), 1e-4, key);
    }

    /// <summary>Regenerates ours-adapter when LORA_HF_WRITE_FIXTURES=1 (then rerun make_fixtures.py to score
    /// it).</summary>
    [TestCaseSource(nameof(Adapted))]
    public void WriteOurAdapterFixtureWhenAsked(string name)
    {
        if (Environment.GetEnvironmentVariable("LORA_HF_WRITE_FIXTURES") != "1")
        {
            Assert.That(Directory.Exists(Path.Combine(HfFixtures.Folder(name), "ours-adapter")), "committed fixture");
            return;
        }
        TrainOurs(name, Path.Combine(HfFixtures.Folder(name), "ours-adapter"));
    }

    private static LoraConfig Config(string name) => new()
    {
        Rank = 4,
        Alpha = 8,
        TargetModules = name == "gpt2-tiny" ? ["c_attn", "c_fc"] : ["q_proj", "v_proj", "down_proj"],
    };

    private static void TrainOurs(string name, string directory)
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder(name));
        var peft = LoraModel.GetPeftModel(model, Config(name) with { BaseModelNameOrPath = name },
            new TorchGenerator(3));
        int[] ids = HfFixtures.Ints(HfFixtures.Expected(name).GetProperty("ids"));
        var opt = new AdamW(peft.TrainableParameters(), 2e-2, weightDecay: 0);
        for (int i = 0; i < 10; i++) TrainStep(model, opt, ids);
        peft.SaveAdapter(directory);
    }

    /// <summary>One step on two 11-token rows of the 24 ids: predict tokens 2..12 of each from those before.</summary>
    private static double TrainStep(CausalLm model, Optimizer opt, int[] ids, TensorArena? arena = null)
    {
        Span<int> inputs = stackalloc int[22], targets = stackalloc int[22];
        for (int b = 0; b < 2; b++)
            for (int t = 0; t < 11; t++)
            {
                inputs[b * 11 + t] = ids[b * 12 + t];
                targets[b * 11 + t] = ids[b * 12 + t + 1];
            }
        using var scope = arena?.Activate();
        opt.ZeroGrad();
        Tensor loss = Functional.CrossEntropy(model.Forward(inputs, 2, 11), targets);
        float value = loss.Item();
        loss.Backward();
        opt.Step();
        return value;
    }
}
