using LoRA.Managed.Autograd;
using LoRA.Managed.IO;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;
using LoRA.Managed.Tests.Autograd;

namespace LoRA.Managed.Tests.Models;

/// <summary>
/// LoRA on token embeddings (PEFT's <c>lora.Embedding</c>) with tied heads, against a twin of PEFT's source
/// (tests/fixtures/hf/make_embedding_fixtures.py): GPT-2's <c>wte</c>, and a Llama's <c>embed_tokens</c> beside
/// <c>q_proj</c>. Unmerged, the head keeps the base table; merged, it sees the merged one, as in PEFT.
/// </summary>
public class HfEmbeddingTwinTests
{
    private static readonly string[] Fixtures = ["gpt2-tiny", "llama-gqa-tied"];

    private static (CausalLm Model, PeftModel Peft, int[] Ids) Load(string name)
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder(name));
        var peft = PeftModel.FromPretrained(model, Path.Combine(HfFixtures.Folder(name), "embedding-adapter"));
        return (model, peft, HfFixtures.Ints(HfFixtures.Expected(name).GetProperty("ids")));
    }

    private static float[] Logits(CausalLm model, int[] ids)
    {
        using (Tape.NoGrad()) return model.Forward(ids, 1, ids.Length).Data.ToArray();
    }

    private static double MaxDiff(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();

    [TestCaseSource(nameof(Fixtures))]
    public void PeftEmbeddingAdapterReproducesTheTwin(string name)
    {
        var (model, peft, ids) = Load(name);
        var expected = HfFixtures.Json(Path.Combine(name, "embedding_expected.json"));
        var names = peft.EmbeddingLayers().Select(l => l.Key).Concat(peft.LoraLayers().Select(l => l.Key)).Order();
        Assert.That(names,
            Is.EqualTo(expected.GetProperty("targets").EnumerateArray().Select(e => e.GetString()).Order()));
        Assert.That(peft.EmbeddingLayers().Count(), Is.EqualTo(1));
        // Stored to 9 digits (exact float32); the rest is float32 rounding in another order (as HfDoraTwinTests).
        Assert.That(MaxDiff(Logits(model, ids), HfFixtures.Floats(expected.GetProperty("logits"))), Is.LessThan(2e-5));
    }

    [TestCaseSource(nameof(Fixtures))]
    public void MergedTableReachesTheTiedHeadAndUnmergeRestoresItExactly(string name)
    {
        var (model, peft, ids) = Load(name);
        var expected = HfFixtures.Json(Path.Combine(name, "embedding_expected.json"));
        float[] table = peft.EmbeddingLayers().Single().Value.BaseLayer.Weight.Data.ToArray();
        float[] adapted = Logits(model, ids);
        peft.Merge();
        Assert.That(MaxDiff(Logits(model, ids), HfFixtures.Floats(expected.GetProperty("merged_logits"))),
            Is.LessThan(2e-5));
        peft.Unmerge();
        Assert.That(peft.EmbeddingLayers().Single().Value.BaseLayer.Weight.Data.ToArray(), Is.EqualTo(table));
        Assert.That(Logits(model, ids), Is.EqualTo(adapted));
        // merge_and_unload gives back a plain model whose lookup and tied head both use the merged table.
        Module plain = peft.MergeAndUnload();
        Assert.That(plain.NamedModules().Any(m => m.Value is LoraEmbedding), Is.False);
        Assert.That(MaxDiff(Logits(model, ids), HfFixtures.Floats(expected.GetProperty("merged_logits"))),
            Is.LessThan(2e-5));
    }

    [TestCaseSource(nameof(Fixtures))]
    public void SavedEmbeddingAdapterHasPeftsKeysAndReloadsIdentically(string name)
    {
        var (model, peft, ids) = Load(name);
        using var dir = new HfFixtures.TempDir();
        peft.SaveAdapter(dir.Path);
        var theirs = SafeTensors.Read(Path.Combine(HfFixtures.Folder(name), "embedding-adapter",
            AdapterFiles.WeightsFileName)).Tensors;
        var ours = SafeTensors.Read(Path.Combine(dir.Path, AdapterFiles.WeightsFileName)).Tensors;
        // PEFT also writes a targeted embed_tokens' whole table (save_embedding_layers="auto"); we write only the
        // adapter, which PEFT loads as well (the table is the base's own).
        Assert.That(ours.Keys.Order(),
            Is.EqualTo(theirs.Keys.Where(k => !k.EndsWith(".base_layer.weight", StringComparison.Ordinal)).Order()));
        Assert.That(ours.Keys.Count(k => k.EndsWith(".lora_embedding_A", StringComparison.Ordinal)), Is.EqualTo(1));
        foreach (var (key, t) in ours)
        {
            Assert.That(t.Shape, Is.EqualTo(theirs[key].Shape), key);
            Assert.That(t.Data.ToArray(), Is.EqualTo(theirs[key].Data.ToArray()), key);
        }
        CausalLm fresh = HfModel.Load(HfFixtures.Folder(name));
        PeftModel.FromPretrained(fresh, dir.Path);
        Assert.That(Logits(fresh, ids), Is.EqualTo(Logits(model, ids)));
    }

    [Test]
    public void TrainingTheEmbeddingAdapterReducesTheLoss()
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder("gpt2-tiny"));
        var peft = LoraModel.GetPeftModel(model, new LoraConfig { Rank = 4, Alpha = 8, TargetModules = ["wte"] },
            new TorchGenerator(5));
        var layer = peft.EmbeddingLayers().Single().Value;
        Assert.That(layer.LoraEmbeddingA["default"].Data.ToArray(), Is.All.Zero, "PEFT: A starts at zero");
        Assert.That(peft.TrainableParameterCount, Is.EqualTo(4 * 48 + 16 * 4));
        int[] ids = HfFixtures.Ints(HfFixtures.Expected("gpt2-tiny").GetProperty("ids"));
        var opt = new AdamW(peft.TrainableParameters(), 2e-2, weightDecay: 0);
        double first = Step(model, opt, ids), last = first;
        for (int i = 0; i < 10; i++) last = Step(model, opt, ids);
        Assert.That(last, Is.LessThan(first - 0.05));
        Assert.That(model.NamedParameters().Where(p => p.Value.HasGrad).Select(p => p.Key),
            Is.EquivalentTo(new[] { "transformer.wte.lora_embedding_A.default",
                "transformer.wte.lora_embedding_B.default" }));
    }

    [Test]
    public void PositionEmbeddingAdapterIsAppliedAndMergesExactly()
    {
        // wpe is not tied: adapted and merged logits agree; the lookup goes through the wrapper, not the old table.
        CausalLm model = HfModel.Load(HfFixtures.Folder("gpt2-tiny"));
        int[] ids = HfFixtures.Ints(HfFixtures.Expected("gpt2-tiny").GetProperty("ids"));
        float[] baseLogits = Logits(model, ids);
        var peft = LoraModel.GetPeftModel(model, new LoraConfig { Rank = 2, TargetModules = ["wpe"] },
            new TorchGenerator(5));
        new TorchGenerator(6)
            .FillUniform(peft.EmbeddingLayers().Single().Value.LoraEmbeddingA["default"].Data, -1f, 1f);
        float[] adapted = Logits(model, ids);
        Assert.That(MaxDiff(adapted, baseLogits), Is.GreaterThan(1e-2));
        peft.MergeAndUnload();
        Assert.That(MaxDiff(Logits(model, ids), adapted), Is.LessThan(1e-4));
    }

    [Test]
    public void ASteadyStateEmbeddingTrainingStepAllocatesNothing()
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder("llama-gqa-tied"));
        var peft = LoraModel.GetPeftModel(model,
            new LoraConfig { Rank = 4, TargetModules = ["embed_tokens", "q_proj"] }, new TorchGenerator(5));
        int[] ids = HfFixtures.Ints(HfFixtures.Expected("llama-gqa-tied").GetProperty("ids"));
        var opt = new AdamW(peft.TrainableParameters(), 1e-2, weightDecay: 0);
        var arena = new TensorArena();
        int saved = LoRA.Managed.Kernels.ComputeThreads.Max;
        LoRA.Managed.Kernels.ComputeThreads.Max = 1;
        try
        {
            Assert.That(SteadyState.AllocatedBytes(() => Step(model, opt, ids, arena), 5), Is.Zero);
        }
        finally { LoRA.Managed.Kernels.ComputeThreads.Max = saved; }
    }

    private static double Step(CausalLm model, Optimizer opt, int[] ids, TensorArena? arena = null)
    {
        using var scope = arena?.Activate();
        opt.ZeroGrad();
        Tensor loss = Functional.CrossEntropy(model.Forward(ids.AsSpan(0, 23), 1, 23), ids.AsSpan(1, 23));
        float value = loss.Item();
        loss.Backward();
        opt.Step();
        return value;
    }
}
