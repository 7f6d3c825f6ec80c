using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;
using LoRA.Managed.Tests.Autograd;

namespace LoRA.Managed.Tests.Nn;

/// <summary>
/// An <see cref="Embedding"/> whose frozen table is stored quantised (issue 16: a QLoRA base's embeddings and tied
/// head): the lookup equals the float lookup over the dequantised table (the reference twin) for every format and
/// awkward sizes; the tied head (<see cref="Embedding.AsHead"/>) and the fused head + loss over a quantised table
/// equal their float composition over the dequantised table, value and ∂h; LoRA's <c>lora.Embedding</c> adapts a
/// quantised table (forward and adapter gradients as over the float twin), refuses to merge into it, and a training
/// step allocates nothing once warm.
/// </summary>
public class QuantizedEmbeddingTests
{
    private static readonly BaseDType[] DTypes = Enum.GetValues<BaseDType>();

    private static IEnumerable<TestCaseData> Sizes()
    {
        foreach (BaseDType d in DTypes)
            foreach (var (vocab, dim) in new[] { (1, 1), (7, 65), (65, 7), (129, 63), (63, 129), (300, 1) })
                yield return new TestCaseData(d, vocab, dim);
    }

    // A table and its quantised twin: `floatTwin` holds the dequantised values, what the quantised table stands for.
    private static (Embedding Quantised, Embedding FloatTwin) Tables(BaseDType dtype, int vocab, int dim, int seed = 3)
    {
        var q = new Embedding(vocab, dim, new TorchGenerator((ulong)seed));
        q.QuantizeWeight(dtype);
        var f = Embedding.Empty(vocab, dim);
        QuantReference.Dequantize(q.QuantizedWeight!).CopyTo(f.Weight.Data);
        return (q, f);
    }

    private static int[] Ids(int vocab, int n) =>
        Enumerable.Range(0, n).Select(i => i == 0 ? vocab - 1 : i % 3 == 0 ? 0 : (i * 37 + 11) % vocab).ToArray();

    [TestCaseSource(nameof(Sizes))]
    public void LookupEqualsTheLookupOfTheDequantisedTable(BaseDType dtype, int vocab, int dim)
    {
        var (q, f) = Tables(dtype, vocab, dim);
        Assert.That(q.IsQuantized && q.Weight.Count == 0 && q.QuantizedWeight!.DType == dtype);
        Assert.That(q.NamedParameters(), Is.Empty, "the quantised table is no parameter");
        int[] ids = Ids(vocab, 6);   // repeats, 0 and the last row
        float[] got = q.Forward(ids, 2, 3).Data.ToArray(), want = f.Forward(ids, 2, 3).Data.ToArray();
        Assert.That(q.Forward(ids, 2, 3).Shape, Is.EqualTo(new[] { 2, 3, dim }));
        Assert.That(got, Is.EqualTo(want), "bit for bit: each row is expanded exactly as the whole table is");
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => q.Forward([0, vocab], 2));
        Assert.That(ex!.Message, Does.Contain($"id {vocab} at position 1").And.Contain(dtype.ToString()));
    }

    [Test]
    public void QuantisingTwiceOrAMisShapedCopyIsRefused()
    {
        var (q, _) = Tables(BaseDType.Nf4, 9, 8);
        Assert.That(Assert.Throws<InvalidOperationException>(() => q.QuantizeWeight(BaseDType.Int8))!.Message,
            Does.Contain("already quantised"));
        var e = Embedding.Empty(9, 8);
        var other = QuantizedMatrix.Quantize(new float[8 * 9], 8, 9, BaseDType.Bf16);
        Assert.That(Assert.Throws<ArgumentException>(() => e.UseQuantizedWeight(other))!.Message,
            Does.Contain("[8, 9]").And.Contain("[9, 8]"));
        e.UseQuantizedWeight(q.QuantizedWeight!);
        Assert.That(e.Forward([3], 1).Data.ToArray(), Is.EqualTo(q.Forward([3], 1).Data.ToArray()));
    }

    [TestCase(BaseDType.Bf16, 1)]
    [TestCase(BaseDType.F16, 7)]
    [TestCase(BaseDType.Int8, 65)]
    [TestCase(BaseDType.Nf4, 129)]
    public void TiedHeadEqualsTheFloatHeadOverTheDequantisedTable(BaseDType dtype, int n)
    {
        var (q, f) = Tables(dtype, 65, 63);
        var g = new TorchGenerator(11);
        Tensor h1 = GradCheck.Param(g, n, 63), h2 = h1.Clone();
        h2.RequiresGrad = true;
        // One graph at a time: a backward runs (and clears) everything the thread's tape recorded.
        Tensor a = q.AsHead(h1);
        float[] av = a.Data.ToArray();
        GradCheck.WeightedSum(a).Backward();
        Tensor b = f.AsHead(h2);
        float[] bv = b.Data.ToArray();
        GradCheck.WeightedSum(b).Backward();
        for (int i = 0; i < av.Length; i++) Assert.That(av[i], Is.EqualTo(bv[i]).Within(1e-4f), $"logit {i}");
        for (int i = 0; i < h1.Count; i++) Assert.That(h1.Grad[i], Is.EqualTo(h2.Grad[i]).Within(1e-4f), $"∂h[{i}]");
    }

    [TestCase(BaseDType.Bf16, 1)]
    [TestCase(BaseDType.Int8, 63)]
    [TestCase(BaseDType.Nf4, 65)]
    [TestCase(BaseDType.Nf4, 130)]
    [TestCase(BaseDType.F16, 129)]
    public void FusedLossOverAQuantisedHeadMatchesTheUnfusedFloatLoss(BaseDType dtype, int n)
    {
        var (q, f) = Tables(dtype, 67, 65);
        f.RequiresGrad(false);
        var g = new TorchGenerator((ulong)n);
        Tensor h = GradCheck.Param(g, n, 65);
        int[] labels = Enumerable.Range(0, n).Select(i => i % 5 == 3 ? -100 : (i * 31 + 7) % 67).ToArray();
        if (labels.All(l => l == -100)) labels[0] = 0;
        Tensor reference = Functional.CrossEntropy(Functional.Linear(h, f.Weight), labels);
        float expected = reference.Item();
        Functional.Scale(reference, 0.75f).Backward();
        float[] expectedGrad = h.Grad.ToArray();
        h.ZeroGrad();
        Tensor fused = Functional.LinearCrossEntropy(h, q.QuantizedWeight!, labels);
        Assert.That(fused.Item(), Is.EqualTo(expected).Within(1e-5f * Math.Max(1f, Math.Abs(expected))));
        Functional.Scale(fused, 0.75f).Backward();
        for (int i = 0; i < h.Count; i++)
            Assert.That(h.Grad[i], Is.EqualTo(expectedGrad[i]).Within(1e-6f + 1e-4f * Math.Abs(expectedGrad[i])),
                $"∂h[{i}]");
        GradCheck.Check(() => Functional.LinearCrossEntropy(h, q.QuantizedWeight!, labels), [h], eps: 1e-2f,
            tol: 1e-3f);
    }

    [TestCase(BaseDType.Int8)]
    [TestCase(BaseDType.Nf4)]
    public void LoraOnAQuantisedTableMatchesLoraOnTheFloatTwin(BaseDType dtype)
    {
        var (q, f) = Tables(dtype, 65, 7);
        var config = new LoraConfig { Rank = 3, Alpha = 6, TargetModules = ["embed"] };
        var lq = new LoraEmbedding(q, "embed");
        var lf = new LoraEmbedding(f, "embed");
        lq.AddAdapter("default", config, new TorchGenerator(4));
        lf.AddAdapter("default", config, new TorchGenerator(4));
        // A starts at zero: give both the same nonzero A so the low-rank path shows.
        new TorchGenerator(9).FillNormal(lq.LoraEmbeddingA["default"].Data);
        lq.LoraEmbeddingA["default"].Data.CopyTo(lf.LoraEmbeddingA["default"].Data);
        int[] ids = Ids(65, 9);
        Tensor yq = lq.Forward(ids, 3, 3);
        float[] a = yq.Data.ToArray();
        GradCheck.WeightedSum(yq).Backward();
        Tensor yf = lf.Forward(ids, 3, 3);
        float[] b = yf.Data.ToArray();
        GradCheck.WeightedSum(yf).Backward();
        for (int i = 0; i < a.Length; i++) Assert.That(a[i], Is.EqualTo(b[i]).Within(1e-5f), $"y[{i}]");
        foreach (var dict in new[] { (lq.LoraEmbeddingA, lf.LoraEmbeddingA), (lq.LoraEmbeddingB, lf.LoraEmbeddingB) })
        {
            float[] gq = dict.Item1["default"].Grad.ToArray(), gf = dict.Item2["default"].Grad.ToArray();
            for (int i = 0; i < gq.Length; i++)
                Assert.That(gq[i], Is.EqualTo(gf[i]).Within(1e-4f), $"adapter grad {i}");
        }
        lq.AdaptersDisabled = true;
        Assert.That(lq.Forward(ids, 9).Data.ToArray(), Is.EqualTo(q.Forward(ids, 9).Data.ToArray()));
        lq.AdaptersDisabled = false;
        var ex = Assert.Throws<InvalidOperationException>(() => lq.Merge());
        Assert.That(ex!.Message, Does.Contain(dtype.ToString()).And.Contain("--embedding-dtype f32"));
        Assert.That(lq.IsMerged, Is.False);
    }

    [Test]
    public void ATrainingStepOverAQuantisedTableAndHeadAllocatesNothing()
    {
        var (table, _) = Tables(BaseDType.Nf4, 70, 64);
        var lora = new LoraEmbedding(table, "wte");
        lora.AddAdapter("default", new LoraConfig { Rank = 4, Alpha = 8, TargetModules = ["wte"] },
            new TorchGenerator(2));
        var opt = new AdamW(lora.TrainableParameters(), 1e-2, weightDecay: 0);
        var arena = new TensorArena();
        int[] ids = Ids(70, 40), labels = ids.Select(i => (i + 1) % 70).ToArray(), shape = [40];
        int saved = ComputeThreads.Max;
        ComputeThreads.Max = 1;
        try
        {
            float first = Step(), last = first;
            Assert.That(SteadyState.AllocatedBytes(() => last = Step(), 5), Is.Zero, "bytes per steady-state step");
            Assert.That(last, Is.LessThan(first));
        }
        finally { ComputeThreads.Max = saved; }

        float Step()
        {
            using var scope = arena.Activate();
            opt.ZeroGrad();
            // the lookup (+ LoRA), then the tied quantised head fused into the loss
            Tensor x = lora.Forward(ids, shape);
            Tensor loss = Functional.LinearCrossEntropy(x, table.QuantizedWeight!, labels);
            float value = loss.Item();
            loss.Backward();
            opt.Step();
            return value;
        }
    }
}
