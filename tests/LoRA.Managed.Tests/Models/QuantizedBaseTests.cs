using LoRA.Managed.Autograd;
using LoRA.Managed.IO;
using LoRA.Managed.Kernels;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;
using LoRA.Managed.Tests.Autograd;
using LoRA.Managed.Tests.Cli;

namespace LoRA.Managed.Tests.Models;

/// <summary>
/// Issue 16 on the Hugging Face fixtures (GPT-2's Conv1D, Llama with GQA and a tied head): a base loaded with a
/// <see cref="BaseDType"/> computes what the float32 model computes with its linear weights replaced by their
/// dequantised values; LoRA trains on it with gradients only in the adapter and no allocation per step; its adapter
/// is an ordinary PEFT adapter that loads onto the float32 base; merging into it is refused; the CLI's
/// <c>--base-dtype</c> works and names itself when given a bad value.
/// </summary>
[NonParallelizable]
public class QuantizedBaseTests
{
    public static readonly string[] Models = ["gpt2-tiny", "llama-gqa-tied"];

    private static LoraConfig Config(string name) => new()
    {
        Rank = 4,
        Alpha = 8,
        TargetModules = name == "gpt2-tiny" ? ["c_attn", "c_fc"] : ["q_proj", "v_proj", "down_proj"],
    };

    [Test]
    public void QuantisedModelEqualsTheFloatModelOverDequantisedWeights(
        [ValueSource(nameof(Models))] string name, [Values(BaseDType.Bf16, BaseDType.Int8, BaseDType.Nf4)] BaseDType d,
        [Values(null, BaseDType.F32, BaseDType.Nf4)] BaseDType? embeddings)
    {
        CausalLm q = HfModel.Load(HfFixtures.Folder(name), d, embeddings);
        CausalLm f = HfModel.Load(HfFixtures.Folder(name));
        var floats = f.NamedModules().ToDictionary(m => m.Key, m => m.Value);
        BaseDType tables = embeddings ?? HfModel.DefaultEmbeddingDType(d);
        Assert.That(tables, Is.EqualTo(embeddings ?? BaseDType.Bf16), "bf16 tables unless asked otherwise");
        int quantised = 0;
        foreach (var (key, module) in q.NamedModules())
        {
            if (module is not IQuantizableWeight layer) continue;
            bool head = module is Embedding || key.EndsWith("lm_head", StringComparison.Ordinal);
            BaseDType want = head ? tables : d;
            if (want == BaseDType.F32)
            {
                Assert.That(layer.IsQuantized, Is.False, $"{key} stays float32");
                continue;
            }
            Assert.That(layer.IsQuantized && layer.Weight.Count == 0 && layer.QuantizedWeight!.DType == want, key);
            float[] w = QuantReference.Dequantize(layer.QuantizedWeight!);
            if (floats[key] is Linear { FanInFanOut: true } twin)
            {
                int o = twin.OutFeatures, n = twin.InFeatures;
                for (int r = 0; r < o; r++)
                    for (int c = 0; c < n; c++)
                        twin.Weight.Data[c * o + r] = w[r * n + c];
            }
            else w.CopyTo(((IQuantizableWeight)floats[key]).Weight.Data);
            quantised++;
        }
        Assert.That(quantised, Is.GreaterThan(4));
        Assert.That(q.NamedParameters().Any(p => p.Key.EndsWith("proj.weight", StringComparison.Ordinal)
            || p.Key.EndsWith("c_attn.weight", StringComparison.Ordinal)), Is.False, "no float32 copy left");
        int[] ids = HfFixtures.Ints(HfFixtures.Expected(name).GetProperty("ids"));
        float[] a, b;
        using (Tape.NoGrad())
        {
            a = q.Forward(ids, 1, ids.Length).Data.ToArray();
            b = f.Forward(ids, 1, ids.Length).Data.ToArray();
            // The training loss: a quantised head (tied or not) fused into the cross-entropy, as the float one.
            int n = ids.Length - 1;
            Assert.That(q.Loss(ids.AsSpan(0, n), ids.AsSpan(1), 1, n).Item(),
                Is.EqualTo(f.Loss(ids.AsSpan(0, n), ids.AsSpan(1), 1, n).Item()).Within(1e-5f), "loss");
        }
        for (int i = 0; i < a.Length; i++) Assert.That(a[i], Is.EqualTo(b[i]).Within(1e-4f), $"logit {i}");
        // Decoding (one row, QuantizedMatrix's GEMV) agrees with the batched path.
        int[] prompt = HfFixtures.Ints(HfFixtures.Expected(name).GetProperty("prompt"));
        var settings = new GenerationSettings { MaxNewTokens = 8 };
        Assert.That(q.Generate(prompt, settings), Is.EqualTo(f.Generate(prompt, settings)));
    }

    [TestCaseSource(nameof(Models))]
    public void Nf4AdapterTrainsAllocationFreeAndLoadsOntoTheFloatBase(string name)
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder(name), BaseDType.Nf4);
        var peft = LoraModel.GetPeftModel(model, Config(name), new TorchGenerator(5));
        Assert.That(peft.BaseChecksum, Is.EqualTo(BaseChecksum.Compute(HfModel.Load(HfFixtures.Folder(name)))),
            "the float32 base's fingerprint, taken while loading");
        int[] ids = HfFixtures.Ints(HfFixtures.Expected(name).GetProperty("ids"));
        var opt = new AdamW(peft.TrainableParameters(), 1e-2, weightDecay: 0);
        var arena = new TensorArena();
        var (first, last) = StepsAllocationFree(() => TrainStep(model, opt, ids, arena));
        Assert.That(last, Is.LessThan(first - 0.05));
        foreach (var (n, p) in model.NamedParameters())
            Assert.That(p.HasGrad, Is.EqualTo(n.Contains(".lora_")), n);

        using var dir = new HfFixtures.TempDir();
        peft.SaveAdapter(dir.Path);
        var file = SafeTensors.Read(Path.Combine(dir.Path, "adapter_model.safetensors"));
        Assert.That(file.Tensors.Keys, Has.All.StartWith("base_model.model.").And.Contain(".lora_"));
        var trained = peft.NamedParameters().Where(p => p.Key.Contains(".lora_"))
            .ToDictionary(p => p.Key, p => p.Value.Data.ToArray());

        CausalLm f32 = HfModel.Load(HfFixtures.Folder(name));
        var loaded = PeftModel.FromPretrained(f32, dir.Path);
        foreach (var (key, p) in loaded.NamedParameters().Where(p => p.Key.Contains(".lora_")))
            Assert.That(p.Data.ToArray(), Is.EqualTo(trained[key]), key);
        Assert.That(loaded.BaseChecksum, Is.EqualTo(peft.BaseChecksum));
        // PEFT counts a 4-bit base's weights by their elements: "all params" is the float model's.
        Assert.That(peft.AllParameterCount, Is.EqualTo(loaded.AllParameterCount));
    }

    /// <summary>Four warm-up steps on one thread, then five that must allocate nothing; the first and the last
    /// loss.</summary>
    private static (double First, double Last) StepsAllocationFree(Func<double> step)
    {
        int saved = ComputeThreads.Max;
        ComputeThreads.Max = 1;
        try
        {
            double first = step();
            Assert.That(SteadyState.AllocatedBytes(() => step(), 5), Is.Zero, "bytes per steady-state step");
            return (first, step());
        }
        finally { ComputeThreads.Max = saved; }
    }

    [TestCaseSource(nameof(Models))]
    public void LoraOnAQuantisedTableTrainsThroughTheFusedQuantisedHeadAllocationFree(string name)
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder(name), BaseDType.Nf4, BaseDType.Nf4);
        string table = name == "gpt2-tiny" ? "wte" : "embed_tokens";
        var config = Config(name) with { TargetModules = [.. Config(name).TargetModules, table] };
        var peft = LoraModel.GetPeftModel(model, config, new TorchGenerator(5));
        int[] ids = HfFixtures.Ints(HfFixtures.Expected(name).GetProperty("ids"));
        var opt = new AdamW(peft.TrainableParameters(), 1e-2, weightDecay: 0);
        var arena = new TensorArena();
        var (first, last) = StepsAllocationFree(() => LossStep(model, opt, ids, arena));
        Assert.That(last, Is.LessThan(first - 0.05));
        Assert.That(model.NamedParameters().Where(p => p.Value.HasGrad).Select(p => p.Key),
            Has.Some.Contains(table + ".lora_embedding_A").And.All.Contains(".lora_"));
        Assert.Throws<InvalidOperationException>(() => peft.MergeAndUnload());
    }

    [Test]
    public void TrainingAQuantisedTableAsAModuleToSaveIsRefused()
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder("llama-gqa-tied"), BaseDType.Nf4);
        var ex = Assert.Throws<ArgumentException>(() => LoraModel.GetPeftModel(model,
            Config("llama-gqa-tied") with { ModulesToSave = ["embed_tokens"] }, new TorchGenerator(5)));
        Assert.That(ex!.Message,
            Does.Contain("model.embed_tokens").And.Contain("Bf16").And.Contain("--embedding-dtype f32"));
        // In float32 it trains as before.
        LoraModel.GetPeftModel(HfModel.Load(HfFixtures.Folder("llama-gqa-tied"), BaseDType.Nf4, BaseDType.F32),
            Config("llama-gqa-tied") with { ModulesToSave = ["embed_tokens"] }, new TorchGenerator(5));
    }

    [Test]
    public void APeftAdapterCarryingTheTableNeedsAFloatTable()
    {
        // PEFT's save_embedding_layers writes embed_tokens' whole table beside its factors: it loads into a float table
        // only, and says so.
        string adapter = Path.Combine(HfFixtures.Folder("llama-gqa-tied"), "embedding-adapter");
        var ex = Assert.Throws<InvalidDataFormatException>(() =>
            PeftModel.FromPretrained(HfModel.Load(HfFixtures.Folder("llama-gqa-tied"), BaseDType.Nf4), adapter));
        Assert.That(ex!.Message,
            Does.Contain("base_layer.weight").And.Contain("Bf16").And.Contain("--embedding-dtype f32"));
        PeftModel.FromPretrained(HfModel.Load(HfFixtures.Folder("llama-gqa-tied"), BaseDType.Nf4, BaseDType.F32),
            adapter);
    }

    [Test]
    public void MergingIntoAQuantisedBaseIsRefused()
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder("llama-gqa-tied"), BaseDType.Int8);
        var peft = LoraModel.GetPeftModel(model, Config("llama-gqa-tied"), new TorchGenerator(5));
        var ex = Assert.Throws<InvalidOperationException>(() => peft.MergeAndUnload());
        Assert.That(ex!.Message, Does.Contain("Int8").And.Contain("--base-dtype f32"));
        var svd = Assert.Throws<ArgumentException>(() => LoraModel.GetPeftModel(
            HfModel.Load(HfFixtures.Folder("llama-gqa-tied"), BaseDType.Nf4),
            Config("llama-gqa-tied") with { Init = LoraInit.Pissa },
            new TorchGenerator(5)));
        Assert.That(svd!.Message, Does.Contain("Pissa").And.Contain("Nf4"));
    }

    [Test]
    public void DoraOnAQuantisedBaseIsRefusedBeforeTheModelChanges()
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder("llama-gqa-tied"), BaseDType.Int8);
        var ex = Assert.Throws<ArgumentException>(() => LoraModel.GetPeftModel(model,
            Config("llama-gqa-tied") with { UseDora = true }, new TorchGenerator(5)));
        Assert.That(ex!.Message, Does.Contain("DoRA").And.Contain("Int8"));
        Assert.That(model.NamedModules().Any(m => m.Value is LoraLayer), Is.False, "no layer was wrapped");
    }

    [Test]
    public void CliTakesBaseDTypeAndNamesABadValue()
    {
        using var dir = new HfFixtures.TempDir();
        string text = Path.Combine(dir.Path, "story.txt");
        File.WriteAllText(text,
            "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.\n");
        var (code, output, err) = LoraCli.Run("lm-eval", "--model", HfFixtures.Stories260K, "--data", text,
            "--base-dtype", "nf4",
            "--no-quant-cache"); // the shared folder is read-only: no cache under the user's home from a test
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("mean NLL"));
        var bad = LoraCli.Run("generate", "--model", HfFixtures.Stories260K, "--prompt", "Once", "--base-dtype",
            "int4");
        Assert.That(bad.Code, Is.EqualTo(2));
        Assert.That(bad.Err, Does.Contain("--base-dtype").And.Contain("int4"));
        var f32Tables = LoraCli.Run("lm-eval", "--model", HfFixtures.Stories260K, "--data", text, "--base-dtype", "nf4",
            "--embedding-dtype", "f32");
        Assert.That(f32Tables.Code, Is.EqualTo(0), f32Tables.Err);
        Assert.That(f32Tables.Out, Is.Not.EqualTo(output), "the tables' storage changes the scores");
        var badTables = LoraCli.Run("lm-eval", "--model", HfFixtures.Stories260K, "--data", text,
            "--embedding-dtype", "fp8");
        Assert.That(badTables.Code, Is.EqualTo(2));
        Assert.That(badTables.Err, Does.Contain("--embedding-dtype").And.Contain("fp8"));
    }

    private static double LossStep(CausalLm model, Optimizer opt, int[] ids, TensorArena arena)
    {
        using var scope = arena.Activate();
        opt.ZeroGrad();
        int n = ids.Length - 1;
        Tensor loss = model.Loss(ids.AsSpan(0, n), ids.AsSpan(1), 1, n);
        float value = loss.Item();
        loss.Backward();
        opt.Step();
        return value;
    }

    private static double TrainStep(CausalLm model, Optimizer opt, int[] ids, TensorArena arena)
    {
        Span<int> inputs = stackalloc int[22], targets = stackalloc int[22];
        for (int b = 0; b < 2; b++)
            for (int t = 0; t < 11; t++)
            {
                inputs[b * 11 + t] = ids[b * 12 + t];
                targets[b * 11 + t] = ids[b * 12 + t + 1];
            }
        using var scope = arena.Activate();
        opt.ZeroGrad();
        Tensor loss = Functional.CrossEntropy(model.Forward(inputs, 2, 11), targets);
        float value = loss.Item();
        loss.Backward();
        opt.Step();
        return value;
    }
}
