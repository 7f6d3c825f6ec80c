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
/// DoRA adapters written by a twin of PEFT's <c>lora/dora.py</c> (tests/fixtures/hf/make_dora_fixtures.py) on a Llama
/// (Linear targets) and a GPT-2 (Conv1D targets, <c>fan_in_fan_out</c>): they load with PEFT's keys, give the twin's
/// logits, merge to the twin's weights, unmerge exactly, save back under PEFT's keys and train.
/// </summary>
public class HfDoraTwinTests
{
    private static readonly string[] Fixtures = ["gpt2-tiny", "llama-gqa-tied"];

    private static (CausalLm Model, PeftModel Peft, int[] Ids) Load(string name)
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder(name));
        var peft = PeftModel.FromPretrained(model, Path.Combine(HfFixtures.Folder(name), "dora-adapter"));
        return (model, peft, HfFixtures.Ints(HfFixtures.Expected(name).GetProperty("ids")));
    }

    private static float[] Logits(CausalLm model, int[] ids)
    {
        using (Tape.NoGrad()) return model.Forward(ids, 1, ids.Length).Data.ToArray();
    }

    /// <summary>Max |a − b|.</summary>
    private static double MaxDiff(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();

    [TestCaseSource(nameof(Fixtures))]
    public void PeftDoraAdapterReproducesTheTwinsLogits(string name)
    {
        var (model, peft, ids) = Load(name);
        var expected = HfFixtures.Json(Path.Combine(name, "dora_expected.json"));
        Assert.That(peft.Config.UseDora, Is.True);
        Assert.That(peft.LoraLayers().Select(l => l.Key).Order(),
            Is.EqualTo(expected.GetProperty("targets").EnumerateArray().Select(e => e.GetString()).Order()));
        Assert.That(peft.LoraLayers().All(l => l.Value.IsDora("default")));
        // The twin's logits are stored to 9 digits (exact float32). What remains is float32 rounding in a different
        // order: 1.06e-5 measured on the Llama (|logit| ≤ 6.5, so ~22 ulp), the same size as the twin's own
        // adapted-versus-merged difference (5.0e-6); 2e-5 leaves room for other summation orders (thread counts).
        Assert.That(MaxDiff(Logits(model, ids), HfFixtures.Floats(expected.GetProperty("logits"))), Is.LessThan(2e-5));
    }

    [TestCaseSource(nameof(Fixtures))]
    public void MergeGivesTheTwinsWeightsAndUnmergeRestoresTheBaseExactly(string name)
    {
        var (model, peft, ids) = Load(name);
        var expected = HfFixtures.Json(Path.Combine(name, "dora_expected.json"));
        var twin = SafeTensors.Read(Path.Combine(HfFixtures.Folder(name), "dora-merged.safetensors")).Tensors;
        var before = peft.LoraLayers().ToDictionary(l => l.Key, l => l.Value.BaseLayer.Weight.Data.ToArray());
        float[] adapted = Logits(model, ids);

        peft.Merge();
        foreach (var (layerName, layer) in peft.LoraLayers())
        {
            float[] want = twin[layerName + ".weight"].Data.ToArray(), have = layer.BaseLayer.Weight.Data.ToArray();
            double scale = want.Max(v => Math.Abs((double)v));
            Assert.That(MaxDiff(have, want), Is.LessThan(1e-6 * scale), layerName);
        }
        float[] merged = Logits(model, ids);
        Assert.That(MaxDiff(merged, HfFixtures.Floats(expected.GetProperty("merged_logits"))), Is.LessThan(2e-5));
        Assert.That(MaxDiff(merged, adapted), Is.LessThan(2e-5));

        peft.Unmerge();
        foreach (var (layerName, layer) in peft.LoraLayers())
            Assert.That(layer.BaseLayer.Weight.Data.ToArray(), Is.EqualTo(before[layerName]), layerName);
        Assert.That(Logits(model, ids), Is.EqualTo(adapted));
    }

    [TestCaseSource(nameof(Fixtures))]
    public void SavedDoraAdapterHasPeftsKeysAndReloadsIdentically(string name)
    {
        var (model, peft, ids) = Load(name);
        using var dir = new HfFixtures.TempDir();
        peft.SaveAdapter(dir.Path);
        var theirs = SafeTensors.Read(Path.Combine(HfFixtures.Folder(name), "dora-adapter",
            AdapterFiles.WeightsFileName)).Tensors;
        var ours = SafeTensors.Read(Path.Combine(dir.Path, AdapterFiles.WeightsFileName)).Tensors;
        Assert.That(ours.Keys.Order(), Is.EqualTo(theirs.Keys.Order()));
        Assert.That(ours.Keys.Count(k => k.EndsWith(".lora_magnitude_vector", StringComparison.Ordinal)),
            Is.EqualTo(6));
        foreach (var (key, t) in theirs)
        {
            Assert.That(ours[key].Shape, Is.EqualTo(t.Shape), key);
            Assert.That(ours[key].Data.ToArray(), Is.EqualTo(t.Data.ToArray()), key);
        }
        Assert.That(AdapterConfigFile.Read(Path.Combine(dir.Path, AdapterConfigFile.FileName)).UseDora, Is.True);

        CausalLm fresh = HfModel.Load(HfFixtures.Folder(name));
        PeftModel.FromPretrained(fresh, dir.Path);
        Assert.That(Logits(fresh, ids), Is.EqualTo(Logits(model, ids)));
    }

    [TestCaseSource(nameof(Fixtures))]
    public void TrainingReducesTheLossAndMovesTheMagnitude(string name)
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder(name));
        var config = new LoraConfig
        {
            Rank = 4, Alpha = 8, UseDora = true,
            TargetModules = name == "gpt2-tiny" ? ["c_attn", "c_fc"] : ["q_proj", "v_proj", "down_proj"],
        };
        var peft = LoraModel.GetPeftModel(model, config, new TorchGenerator(5));
        int[] ids = HfFixtures.Ints(HfFixtures.Expected(name).GetProperty("ids"));
        var magnitudes = peft.LoraLayers().Select(l => l.Value.LoraMagnitude!["default"].Weight).ToList();
        Assert.That(magnitudes.All(m => m.RequiresGrad));
        float[] initial = magnitudes.SelectMany(m => m.Data.ToArray()).ToArray();
        Assert.That(peft.TrainableParameterCount, Is.EqualTo(
            peft.LoraLayers().Sum(l => l.Value.LoraA["default"].Weight.Count + l.Value.LoraB["default"].Weight.Count
                + l.Value.LoraMagnitude!["default"].Weight.Count)));

        var opt = new AdamW(peft.TrainableParameters(), 1e-2, weightDecay: 0);
        double first = TrainStep(model, opt, ids), last = first;
        for (int i = 0; i < 10; i++) last = TrainStep(model, opt, ids);
        Assert.That(last, Is.LessThan(first - 0.1));
        float[] trained = magnitudes.SelectMany(m => m.Data.ToArray()).ToArray();
        Assert.That(MaxDiff(trained, initial), Is.GreaterThan(1e-3));
    }

    [Test]
    public void ASteadyStateDoraTrainingStepAllocatesNothing()
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder("gpt2-tiny"));
        var peft = LoraModel.GetPeftModel(model,
            new LoraConfig { Rank = 4, UseDora = true, Dropout = 0.1f, TargetModules = ["c_attn", "c_proj"] },
            new TorchGenerator(5));
        int[] ids = HfFixtures.Ints(HfFixtures.Expected("gpt2-tiny").GetProperty("ids"));
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

    /// <summary>One step on two 11-token rows of the 24 ids (as HfLoraTests).</summary>
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
