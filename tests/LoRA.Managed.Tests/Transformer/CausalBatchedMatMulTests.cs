using LoRA.Managed.Autograd;
using LoRA.Managed.Autograd.Ops;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;
using LoRA.Managed.Tests.Autograd;

namespace LoRA.Managed.Tests.Transformer;

/// <summary>
/// Attention's causal products (<see cref="Functional.CausalBatchedMatMul"/>, <see cref="CausalSlices"/>) against the
/// full <see cref="Functional.BatchedMatMul"/>: the kept (lower-triangle) entries and every gradient are exactly
/// equal (<c>Is.EqualTo</c> without tolerance: the same bits, except that +0 and −0 compare equal), the masked
/// outputs are exact zeros right of the diagonal blocks and the full product's values inside them, on one thread
/// and two with the same bits, at 16- and 32-row blocks. Block rows are a
/// static setting, hence <c>NonParallelizable</c>.
/// </summary>
[NonParallelizable]
public class CausalBatchedMatMulTests
{
    // 300 crosses GEMM's depth block (KC = 256): the depth cut's start then goes down to a multiple of it.
    private static readonly int[] Lengths = [1, 7, 16, 63, 64, 65, 129, 300];

    [Test]
    public void ScoresMatchTheFullProductOnTheLowerTriangle(
        [Values(16, 7)] int hs, [Values(16, 32)] int blockRows, [Values(false, true)] bool sameInputs)
    {
        foreach (int t in Lengths)
        {
            float[][] one = With(1, blockRows, () => Scores(t, hs, causal: true, sameInputs));
            float[][] two = With(2, blockRows, () => Scores(t, hs, causal: true, sameInputs));
            float[][] full = With(1, blockRows, () => Scores(t, hs, causal: false, sameInputs));
            AssertCausalEqual(one, two, full, t, blockRows, $"scores T {t}, hs {hs}, rows {blockRows}");
        }
    }

    [Test]
    public void WeightedSumsMatchTheFullProduct([Values(16, 7)] int hs, [Values(16, 32)] int blockRows)
    {
        foreach (int t in Lengths)
        {
            float[][] one = With(1, blockRows, () => Weighted(t, hs, causal: true));
            float[][] two = With(2, blockRows, () => Weighted(t, hs, causal: true));
            float[][] full = With(1, blockRows, () => Weighted(t, hs, causal: false));
            AssertCausalEqual(one, two, full, t, blockRows, $"weighted T {t}, hs {hs}, rows {blockRows}");
        }
    }

    [TestCase(1, 5), TestCase(2, 7), TestCase(1, 40)]
    public void AttentionThroughTheCausalProductsPassesTheGradientCheck(int heads, int t)
    {
        var g = new TorchGenerator(9);
        Tensor q = GradCheck.Param(g, 2, heads, t, 3), k = GradCheck.Param(g, 2, heads, t, 3);
        Tensor v = GradCheck.Param(g, 2, heads, t, 3);
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.CausalBatchedMatMul(
            Functional.CausalSoftmax(Functional.CausalBatchedMatMul(q, k, transposeB: true), 0.6f), v)),
            new[] { q, k, v }, eps: 1e-3f);
    }

    [Test]
    public void ShapesThatAreNotCausalAreRejected()
    {
        Assert.Throws<ArgumentException>(() =>
            Functional.CausalBatchedMatMul(new Tensor(2, 5, 3), new Tensor(2, 4, 3), transposeB: true));
        Assert.Throws<ArgumentException>(() =>
            Functional.CausalBatchedMatMul(new Tensor(2, 5, 4), new Tensor(2, 4, 3)));
    }

    // Outputs 0..: the product, then the input gradients. Where the product is T×T (scores; ∂P) the causal one must
    // equal the full one on j ≤ i and be 0 above; everything else equal everywhere.
    private static void AssertCausalEqual(float[][] one, float[][] two, float[][] full, int t, int rows, string what)
    {
        for (int o = 0; o < one.Length; o++)
        {
            Assert.That(two[o], Is.EqualTo(one[o]), $"{what}: output {o}, 2 threads vs 1");
            bool square = one[o].Length % (t * t) == 0 && IsSquare(what, o);
            for (int x = 0; x < one[o].Length; x++)
            {
                int i = x % (t * t) / t, j = x % (t * t) % t;
                bool masked = square && j > i;
                // Masked entries: the full product's value inside the diagonal blocks, exact zeros right of them.
                float expected = masked && j >= (i / rows + 1) * rows ? 0f : full[o][x];
                if (one[o][x] != expected)
                    Assert.Fail($"{what}: output {o}, element {x}: {one[o][x]} vs {expected}" +
                        (masked ? " (masked)" : ""));
            }
        }
    }

    private static bool IsSquare(string what, int output) =>
        what.StartsWith("scores", StringComparison.Ordinal) ? output == 0 : output == 1;

    private static float[][] With(int threads, int blockRows, Func<float[][]> run)
    {
        int saved = ComputeThreads.Max, savedRows = CausalSlices.BlockRows, savedColumns = CausalSlices.ColumnBlockRows;
        ComputeThreads.Max = threads;
        CausalSlices.BlockRows = CausalSlices.ColumnBlockRows = blockRows;
        try { return run(); }
        finally
        {
            ComputeThreads.Max = saved;
            CausalSlices.BlockRows = savedRows;
            CausalSlices.ColumnBlockRows = savedColumns;
        }
    }

    // S = tril(q·kᵀ) over 2×3 slices; its upstream gradient is zero above the diagonal, as the causal softmax
    // writes it. q is an op's output (pooled gradient, written with β = 0); k a leaf (added to, β = 1), or q itself.
    private static float[][] Scores(int t, int hs, bool causal, bool sameInputs)
    {
        var g = new TorchGenerator(21);
        Tensor q0 = Leaf(g, 2, 3, t, hs), k = Leaf(g, 2, 3, t, hs);
        Tensor q = Functional.Scale(q0, 1f);
        Tensor kk = sameInputs ? q : k;
        Tensor s = causal ? Functional.CausalBatchedMatMul(q, kk, transposeB: true)
            : Functional.BatchedMatMul(q, kk, transposeB: true);
        float[] seed = LowerTriangular(g, 6, t);
        float[] sOut = s.Data.ToArray();
        Tape.Current.Backward(s, seed);
        return [sOut, q0.Grad.ToArray(), k.Grad.ToArray()];
    }

    // y = P·v with P lower triangular: P an op's output (∂P written, β = 0), v a leaf.
    private static float[][] Weighted(int t, int hs, bool causal)
    {
        var g = new TorchGenerator(22);
        var p0 = new Tensor(2, 3, t, t) { RequiresGrad = true };
        LowerTriangular(g, 6, t).CopyTo(p0.Data);
        Tensor v = Leaf(g, 2, 3, t, hs);
        Tensor p = Functional.Scale(p0, 1f);
        Tensor y = causal ? Functional.CausalBatchedMatMul(p, v) : Functional.BatchedMatMul(p, v);
        float[] seed = new float[y.Count];
        g.FillUniform(seed, -1f, 1f);
        float[] yOut = y.Data.ToArray();
        Tape.Current.Backward(y, seed);
        return [yOut, p0.Grad.ToArray(), v.Grad.ToArray()];
    }

    private static float[] LowerTriangular(TorchGenerator g, int matrices, int t)
    {
        float[] m = new float[matrices * t * t];
        g.FillUniform(m, -1f, 1f);
        for (int x = 0; x < m.Length; x++)
            if (x % (t * t) % t > x % (t * t) / t) m[x] = 0f;
        return m;
    }

    private static Tensor Leaf(TorchGenerator g, params int[] shape)
    {
        var t = new Tensor(shape) { RequiresGrad = true };
        g.FillUniform(t.Data, -1f, 1f);
        return t;
    }
}
