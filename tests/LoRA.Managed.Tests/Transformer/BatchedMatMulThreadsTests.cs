using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Transformer;

/// <summary>
/// Attention-shaped batched products (slices of 64×64×16, too small to split one by one, so the batch is spread over
/// threads in runs of consecutive slices) give the same bits on one thread and two, forward and backward; the input
/// gradients are written (β = 0) when new and added to (β = 1) when they already hold a value.
/// </summary>
public class BatchedMatMulThreadsTests
{
    [TestCase(false, true), TestCase(false, false), TestCase(true, false), TestCase(true, true)]
    public void AttentionShapedBatchesGiveTheSameBitsOnOneAndTwoThreads(bool ta, bool tb)
    {
        // 15 slices: runs of 4 on two threads, the last one short.
        const int b0 = 3, b1 = 5, m = 64, k = 16, n = 64;
        var one = Run(1, ta, tb, b0, b1, m, k, n);
        var two = Run(2, ta, tb, b0, b1, m, k, n);
        for (int i = 0; i < one.Length; i++)
            Assert.That(two[i], Is.EqualTo(one[i]), $"output {i} (0 = C, 1 = ∂A, 2 = ∂B)");
    }

    [Test]
    public void ASecondBackwardAddsToTheInputGradients()
    {
        var g = new TorchGenerator(11);
        Tensor a = Leaf(g, 4, 64, 16), b = Leaf(g, 4, 64, 16);
        float[] seed = new float[4 * 64 * 64];
        g.FillUniform(seed, -1f, 1f);
        Tape.Current.Backward(Functional.BatchedMatMul(a, b, false, true), seed);
        float[] once = a.Grad.ToArray();
        Tape.Current.Backward(Functional.BatchedMatMul(a, b, false, true), seed);
        for (int i = 0; i < once.Length; i++) Assert.That(a.Grad[i], Is.EqualTo(once[i] + once[i]).Within(1e-5f));
    }

    private static float[][] Run(int threads, bool ta, bool tb, int b0, int b1, int m, int k, int n)
    {
        int saved = ComputeThreads.Max;
        ComputeThreads.Max = threads;
        try
        {
            var g = new TorchGenerator(5);
            Tensor a0 = Leaf(g, b0, b1, ta ? k : m, ta ? m : k), b = Leaf(g, b0, b1, tb ? n : k, tb ? k : n);
            // A is an op's output, so its gradient is a pooled buffer that backward writes with β = 0.
            Tensor a = Functional.Scale(a0, 1f);
            Tensor c = Functional.BatchedMatMul(a, b, ta, tb);
            float[] seed = new float[c.Count];
            g.FillUniform(seed, -1f, 1f);
            float[] cOut = c.Data.ToArray();
            Tape.Current.Backward(c, seed);
            return [cOut, a0.Grad.ToArray(), b.Grad.ToArray()];
        }
        finally { ComputeThreads.Max = saved; }
    }

    private static Tensor Leaf(TorchGenerator g, params int[] shape)
    {
        var t = new Tensor(shape) { RequiresGrad = true };
        g.FillUniform(t.Data, -1f, 1f);
        return t;
    }
}
