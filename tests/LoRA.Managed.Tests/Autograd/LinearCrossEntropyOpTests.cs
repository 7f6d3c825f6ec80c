using LoRA.Managed.Autograd;
using LoRA.Managed.Autograd.Ops;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Autograd;

/// <summary>The fused head + loss against its reference twin, <c>CrossEntropy(Linear(h, W))</c>, across chunk
/// edges.</summary>
public class LinearCrossEntropyOpTests
{
    [TestCase(1, 7, 5)]
    [TestCase(7, 63, 9)]
    [TestCase(63, 65, 4)]
    [TestCase(65, 7, 3)]
    [TestCase(129, 129, 8)]
    [TestCase(257, 9, 5)]
    public void MatchesTheUnfusedHeadAndLoss(int n, int vocab, int hidden)
    {
        var g = new TorchGenerator((ulong)(n * 7919 + vocab));
        Tensor h = g.Rand(n, hidden), w = g.Rand(vocab, hidden);
        int[] labels = Enumerable.Range(0, n).Select(i => i % 5 == 3 ? -100 : (i * 31 + 7) % vocab).ToArray();
        if (labels.All(l => l == -100)) labels[0] = 0;
        h.RequiresGrad = true;
        Tensor reference = Functional.CrossEntropy(Functional.Linear(h, w), labels);
        float expected = reference.Item();
        Functional.Scale(reference, 0.75f).Backward();
        float[] expectedGrad = h.Grad.ToArray();
        h.ZeroGrad();

        Tensor fused = Functional.LinearCrossEntropy(h, w, labels);
        Assert.That(fused.Item(), Is.EqualTo(expected).Within(1e-6f * Math.Max(1f, Math.Abs(expected))));
        Functional.Scale(fused, 0.75f).Backward();
        float[] got = h.Grad.ToArray();
        for (int i = 0; i < got.Length; i++)
            Assert.That(got[i], Is.EqualTo(expectedGrad[i]).Within(1e-6f + 1e-5f * Math.Abs(expectedGrad[i])),
                $"∂h[{i}]");
    }

    /// <summary>
    /// The chunks of rows (<see cref="LinearCrossEntropyOp.ChunkRows"/>) change neither the loss nor ∂h by a bit: the
    /// op against the same kernels on the whole batch at once (one product for the logits, <c>NllSum</c> with a
    /// separate gradient buffer, one product for ∂h), on one and two threads, for batches below, at and across chunk
    /// edges.
    /// </summary>
    [TestCase(1)] [TestCase(127)] [TestCase(128)] [TestCase(129)] [TestCase(300)]
    public void ChunksGiveTheWholeBatchsBits(int n)
    {
        const int vocab = 203, hidden = 37;
        var g = new TorchGenerator((ulong)n);
        Tensor h = g.Rand(n, hidden), w = g.Rand(vocab, hidden);
        int[] labels = Enumerable.Range(0, n).Select(i => i % 7 == 5 ? -100 : (i * 13 + 1) % vocab).ToArray();
        if (labels.All(l => l == -100)) labels[0] = 0;
        AssertTheWholeBatchsBits(h, vocab, labels,
            z => Gemm.Multiply(false, true, n, vocab, hidden, 1f, h.Data, hidden, w.Data, hidden, 0f, z, vocab),
            (dz, dh) => Gemm.Multiply(false, false, n, hidden, vocab, 1f, dz, vocab, w.Data, hidden, 0f, dh, hidden),
            () => Functional.LinearCrossEntropy(h, w, labels));
    }

    /// <summary>
    /// The same for a quantised head (<see cref="QuantizedGemm"/>): its one-row product takes a vector path with other
    /// sums than the GEMM's, so no chunk may be a lone row unless the batch is (n = 129 and 257 would end with one).
    /// </summary>
    [TestCase(2, BaseDType.Int8)] [TestCase(65, BaseDType.Nf4)] [TestCase(129, BaseDType.Int8)]
    [TestCase(129, BaseDType.Bf16)] [TestCase(257, BaseDType.Nf4)]
    public void QuantisedHeadChunksGiveTheWholeBatchsBits(int n, BaseDType dtype)
    {
        const int vocab = 203, hidden = 64;
        var g = new TorchGenerator((ulong)(n + 17));
        Tensor h = g.Rand(n, hidden), w = g.Rand(vocab, hidden);
        QuantizedMatrix wq = QuantizedMatrix.Quantize(w.Data, vocab, hidden, dtype);
        int[] labels = Enumerable.Range(0, n).Select(i => i % 7 == 5 ? -100 : (i * 13 + 1) % vocab).ToArray();
        AssertTheWholeBatchsBits(h, vocab, labels, z => QuantizedGemm.MultiplyTransposed(wq, n, h.Data, z),
            (dz, dh) => QuantizedGemm.MultiplyAccumulate(wq, n, dz, dh, beta: 0f),
            () => Functional.LinearCrossEntropy(h, wq, labels));
    }

    // The op's loss and ∂h against the whole batch's logits product, NllSum and ∂h product, bit for bit, on one and
    // two threads.
    private static void AssertTheWholeBatchsBits(Tensor h, int vocab, int[] labels, Action<float[]> logits,
        Action<float[], float[]> inputGradient, Func<Tensor> op)
    {
        int n = h.Shape[0], hidden = h.Shape[1], kept = labels.Count(l => l != -100);
        foreach (int threads in new[] { 1, 2 })
        {
            using var _ = ComputeThreads.Use(threads);
            float[] z = new float[n * vocab], dz = new float[n * vocab], dh = new float[n * hidden];
            logits(z);
            double total = CrossEntropyKernel.NllSum(z, labels, vocab, dz, 1f / kept);
            inputGradient(dz, dh);

            h.RequiresGrad = true;
            h.ZeroGrad();
            Tensor loss = op();
            Assert.That(loss.Item(), Is.EqualTo((float)(total / kept)), $"loss, {threads} thread(s)");
            loss.Backward();
            float[] got = h.Grad.ToArray();
            for (int i = 0; i < got.Length; i++)
                Assert.That(BitConverter.SingleToInt32Bits(got[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(dh[i])),
                    $"∂h[{i / hidden}, {i % hidden}], {threads} thread(s)");
        }
    }

    [Test]
    public void PassesTheFiniteDifferenceCheck()
    {
        var g = new TorchGenerator(8);
        Tensor h = g.Rand(70, 6), w = g.Rand(11, 6);
        h.RequiresGrad = true;
        int[] labels = Enumerable.Range(0, 70).Select(i => i % 11).ToArray();
        GradCheck.Check(() => Functional.LinearCrossEntropy(h, w, labels), new[] { h }, eps: 1e-2f, tol: 1e-3f);
    }

    [Test]
    public void ATrainableHeadAndBadShapesAreRefused()
    {
        var h = new Tensor(3, 4) { RequiresGrad = true };
        var w = new Tensor(5, 4) { RequiresGrad = true };
        Assert.That(Assert.Throws<ArgumentException>(() => Functional.LinearCrossEntropy(h, w, [0, 1, 2]))!.Message,
            Does.Contain("requires a gradient"));
        w.RequiresGrad = false;
        Assert.That(
            Assert.Throws<ArgumentException>(() => Functional.LinearCrossEntropy(h, new Tensor(5, 3),
                [0, 1, 2]))!.Message,
            Does.Contain("[3, 4]").And.Contain("[5, 3]"));
        Assert.Throws<ArgumentException>(() => Functional.LinearCrossEntropy(h, w, [0, 1]));
        Assert.Throws<ArgumentException>(() => Functional.LinearCrossEntropy(h, w, [-100, -100, -100]));
        Assert.Throws<ArgumentException>(() => Functional.LinearCrossEntropy(h, w, [0, 5, 1]));
    }
}
