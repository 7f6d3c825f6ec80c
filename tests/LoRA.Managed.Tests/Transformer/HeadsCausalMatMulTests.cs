using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;
using LoRA.Managed.Tests.Autograd;

namespace LoRA.Managed.Tests.Transformer;

/// <summary>
/// Attention's products on the projections' (B, T, H·D) layout (<see cref="Functional.CausalHeadScores"/>,
/// <see cref="Functional.CausalHeadValues"/>) against the permute path they replace (split the heads with
/// <see cref="Functional.Permute"/>, <see cref="Functional.CausalBatchedMatMul"/>, merge): the same outputs and
/// gradients bit for bit, on one thread and two, for awkward T and head sizes; and a finite-difference check.
/// </summary>
public class HeadsCausalMatMulTests
{
    private static readonly int[] Swap = [0, 2, 1, 3];

    [TestCase(2, 3, 1, 5), TestCase(2, 3, 7, 5), TestCase(3, 4, 64, 16), TestCase(1, 2, 65, 16),
     TestCase(2, 1, 129, 7), TestCase(32, 4, 63, 16)]
    public void AttentionInPlaceIsBitwiseThePermutePathOnOneAndTwoThreads(int batch, int heads, int t, int d)
    {
        float[][] reference = With(1, () => Attention(batch, heads, t, d, inPlace: false));
        foreach (int threads in new[] { 1, 2 })
        {
            float[][] got = With(threads, () => Attention(batch, heads, t, d, inPlace: true));
            string[] names = ["y", "∂q", "∂k", "∂v"];
            for (int i = 0; i < names.Length; i++)
                Assert.That(got[i].Select(BitConverter.SingleToInt32Bits),
                    Is.EqualTo(reference[i].Select(BitConverter.SingleToInt32Bits)),
                    $"{names[i]}, B {batch}, H {heads}, T {t}, D {d}, {threads} thread(s)");
        }
    }

    [TestCase(1, 5), TestCase(2, 7), TestCase(3, 33)]
    public void AttentionInPlacePassesTheGradientCheck(int heads, int t)
    {
        var g = new TorchGenerator(11);
        Tensor q = GradCheck.Param(g, 2, t, heads * 3), k = GradCheck.Param(g, 2, t, heads * 3);
        Tensor v = GradCheck.Param(g, 2, t, heads * 3);
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.CausalHeadValues(
            Functional.CausalSoftmax(Functional.CausalHeadScores(q, k, heads), 0.6f), v, heads)),
            new[] { q, k, v }, eps: 1e-3f);
    }

    [Test]
    public void QAndKMayBeOneTensor()
    {
        // Self-products: ∂x gets both the ∂q and the ∂k blocks of each slice, as with the permute path.
        var g = new TorchGenerator(12);
        Tensor x = GradCheck.Param(g, 2, 9, 8);
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.CausalHeadScores(x, x, 2)), new[] { x }, eps: 1e-3f);
    }

    [Test]
    public void ShapesThatDoNotFitAreRejectedWithTheirShapes()
    {
        var q = new Tensor(2, 5, 6);
        var ex = Assert.Throws<ArgumentException>(() => Functional.CausalHeadScores(q, new Tensor(2, 4, 6), 2));
        Assert.That(ex!.Message, Does.Contain("[2, 4, 6]").And.Contain("[2, 5, 6]"));
        ex = Assert.Throws<ArgumentException>(() => Functional.CausalHeadScores(q, q, 4));
        Assert.That(ex!.Message, Does.Contain("4 heads"));
        ex = Assert.Throws<ArgumentException>(() => Functional.CausalHeadValues(new Tensor(2, 2, 5, 4), q, 2));
        Assert.That(ex!.Message, Does.Contain("[2, 2, 5, 4]"));
    }

    // y, ∂q, ∂k, ∂v of y = P·v with P = causal softmax(q·kᵀ), for q, k, v (B, T, H·D), the loss a weighted sum of y.
    private static float[][] Attention(int batch, int heads, int t, int d, bool inPlace)
    {
        var g = new TorchGenerator(5);
        Tensor q = GradCheck.Param(g, batch, t, heads * d), k = GradCheck.Param(g, batch, t, heads * d);
        Tensor v = GradCheck.Param(g, batch, t, heads * d);
        Tensor y;
        if (inPlace)
            y = Functional.CausalHeadValues(Functional.CausalSoftmax(Functional.CausalHeadScores(q, k, heads), 0.5f),
                v, heads);
        else
        {
            int[] split = [batch, t, heads, d];
            Tensor Heads(Tensor x) => Functional.Permute(Functional.Reshape(x, split), Swap);
            Tensor p = Functional.CausalSoftmax(Functional.CausalBatchedMatMul(Heads(q), Heads(k), transposeB: true),
                0.5f);
            y = Functional.Reshape(Functional.Permute(Functional.CausalBatchedMatMul(p, Heads(v)), Swap),
                batch, t, heads * d);
        }
        GradCheck.WeightedSum(y).Backward();
        return [y.Data.ToArray(), q.Grad.ToArray(), k.Grad.ToArray(), v.Grad.ToArray()];
    }

    private static float[][] With(int threads, Func<float[][]> run)
    {
        using var _ = ComputeThreads.Use(threads);
        return run();
    }
}
