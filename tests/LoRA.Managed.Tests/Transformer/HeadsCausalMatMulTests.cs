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

    // 300 crosses GEMM's depth block (KC = 256).
    [TestCase(2, 3, 1, 5), TestCase(2, 3, 7, 5), TestCase(3, 4, 64, 16), TestCase(1, 2, 65, 16),
     TestCase(2, 1, 129, 7), TestCase(32, 4, 63, 16), TestCase(1, 2, 300, 8)]
    public void AttentionInPlaceIsBitwiseThePermutePathOnOneAndTwoThreads(int batch, int heads, int t, int d)
    {
        float[][] reference = With(1, () => Attention(batch, heads, t, d, inPlace: false));
        foreach (int threads in new[] { 1, 2, 3 })
        {
            float[][] got = With(threads, () => Attention(batch, heads, t, d, inPlace: true));
            string[] names = ["y", "∂q", "∂k", "∂v"];
            for (int i = 0; i < names.Length; i++)
                Assert.That(got[i].Select(BitConverter.SingleToInt32Bits),
                    Is.EqualTo(reference[i].Select(BitConverter.SingleToInt32Bits)),
                    $"{names[i]}, B {batch}, H {heads}, T {t}, D {d}, {threads} thread(s)");
        }
    }

    // Grouped-query attention against repeat_kv: 6 query heads on 2 or 3 key/value heads, and multi-query (1).
    [TestCase(2, 6, 2, 9, 5), TestCase(3, 6, 3, 64, 16), TestCase(2, 4, 1, 65, 8), TestCase(32, 4, 2, 63, 16),
     TestCase(1, 4, 2, 300, 8), TestCase(1, 9, 3, 256, 64)]
    public void GroupedQueryAttentionInPlaceIsBitwiseRepeatKvOnOneAndTwoThreads(int batch, int heads, int kvHeads,
        int t, int d)
    {
        float[][] reference = With(1, () => Attention(batch, heads, t, d, inPlace: false, kvHeads));
        foreach (int threads in new[] { 1, 2, 3 })
        {
            float[][] got = With(threads, () => Attention(batch, heads, t, d, inPlace: true, kvHeads));
            string[] names = ["y", "∂q", "∂k", "∂v"];
            for (int i = 0; i < names.Length; i++)
                Assert.That(got[i].Select(BitConverter.SingleToInt32Bits),
                    Is.EqualTo(reference[i].Select(BitConverter.SingleToInt32Bits)),
                    $"{names[i]}, B {batch}, H {heads}, H_kv {kvHeads}, T {t}, D {d}, {threads} thread(s)");
        }
    }

    // q, k and v already holding a gradient when attention's backward runs (β = 1), beyond KC too: without grouped
    // queries the in-place path adds each whole product, as the permute path's backward does.
    [TestCase(2, 3, 65, 5), TestCase(1, 2, 300, 8)]
    public void WithGradientsAlreadyPresentAttentionInPlaceIsBitwiseThePermutePath(int batch, int heads, int t, int d)
    {
        float[][] reference = With(1, () => Attention(batch, heads, t, d, inPlace: false, pre: true));
        foreach (int threads in new[] { 1, 2 })
        {
            float[][] got = With(threads, () => Attention(batch, heads, t, d, inPlace: true, pre: true));
            string[] names = ["y", "∂q", "∂k", "∂v"];
            for (int i = 0; i < names.Length; i++)
                Assert.That(got[i].Select(BitConverter.SingleToInt32Bits),
                    Is.EqualTo(reference[i].Select(BitConverter.SingleToInt32Bits)),
                    $"{names[i]}, B {batch}, H {heads}, T {t}, D {d}, {threads} thread(s)");
        }
    }

    [Test]
    public void GroupedQueryAttentionInPlacePassesTheGradientCheck()
    {
        var g = new TorchGenerator(13);
        Tensor q = GradCheck.Param(g, 2, 7, 4 * 3), k = GradCheck.Param(g, 2, 7, 2 * 3);
        Tensor v = GradCheck.Param(g, 2, 7, 2 * 3);
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.CausalHeadValues(
            Functional.CausalSoftmax(Functional.CausalHeadScores(q, k, 4, 2), 0.6f), v, 2)),
            new[] { q, k, v }, eps: 1e-3f);
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
        ex = Assert.Throws<ArgumentException>(() => Functional.CausalHeadScores(q, new Tensor(2, 5, 4), 3, 2));
        Assert.That(ex!.Message, Does.Contain("[2, 5, 4]").And.Contain("2 key/value heads"));
        ex = Assert.Throws<ArgumentException>(() => Functional.CausalHeadValues(new Tensor(2, 2, 5, 4), q, 2));
        Assert.That(ex!.Message, Does.Contain("[2, 2, 5, 4]"));
    }

    // y, ∂q, ∂k, ∂v of y = P·v with P = causal softmax(q·kᵀ), for q (B, T, H·D) and k, v (B, T, H_kv·D), the loss
    // a weighted sum of y; the reference splits the heads with permutes and shares key/value heads with repeat_kv.
    private static float[][] Attention(int batch, int heads, int t, int d, bool inPlace, int kvHeads = 0,
        bool pre = false)
    {
        if (kvHeads == 0) kvHeads = heads;
        var g = new TorchGenerator(5);
        Tensor q = GradCheck.Param(g, batch, t, heads * d), k = GradCheck.Param(g, batch, t, kvHeads * d);
        Tensor v = GradCheck.Param(g, batch, t, kvHeads * d);
        Tensor y;
        if (inPlace)
            y = Functional.CausalHeadValues(Functional.CausalSoftmax(
                Functional.CausalHeadScores(q, k, heads, kvHeads), 0.5f), v, kvHeads);
        else
        {
            Tensor Heads(Tensor x, int n) => Functional.Permute(Functional.Reshape(x, batch, t, n, d), Swap);
            Tensor ks = Functional.RepeatKv(Heads(k, kvHeads), heads / kvHeads);
            Tensor vs = Functional.RepeatKv(Heads(v, kvHeads), heads / kvHeads);
            Tensor p = Functional.CausalSoftmax(Functional.CausalBatchedMatMul(Heads(q, heads), ks, transposeB: true),
                0.5f);
            y = Functional.Reshape(Functional.Permute(Functional.CausalBatchedMatMul(p, vs), Swap),
                batch, t, heads * d);
        }
        Tensor loss = GradCheck.WeightedSum(y);
        if (pre) // other uses of q, k and v whose gradients reach them first (the tape runs backward in reverse)
            loss = Functional.Add(loss, Functional.Add(GradCheck.WeightedSum(Functional.Scale(q, 0.3f), 7),
                Functional.Add(GradCheck.WeightedSum(Functional.Scale(k, 0.3f), 8),
                    GradCheck.WeightedSum(Functional.Scale(v, 0.3f), 9))));
        loss.Backward();
        return [y.Data.ToArray(), q.Grad.ToArray(), k.Grad.ToArray(), v.Grad.ToArray()];
    }

    private static float[][] With(int threads, Func<float[][]> run)
    {
        using var _ = ComputeThreads.Use(threads);
        return run();
    }
}
