using LoRA.Managed.Kernels;
using LoRA.Managed.Models;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Models;

/// <summary>RMSNorm, SiLU, RoPE and cached attention kernels against their scalar twins on awkward shapes.</summary>
public class LlamaKernelTests
{
    private static float[] Random(int n, ulong seed, float from = -3f, float to = 3f)
    {
        var a = new float[n];
        new TorchGenerator(seed).FillUniform(a, from, to);
        return a;
    }

    private static void Close(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double rel, double abs,
        string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), what);
        for (int i = 0; i < actual.Length; i++)
            Assert.That(actual[i], Is.EqualTo(expected[i]).Within(abs + rel * Math.Abs(expected[i])),
                $"{what}: element {i}");
    }

    [TestCase(1, 1), TestCase(3, 7), TestCase(2, 63), TestCase(5, 65), TestCase(1, 129), TestCase(4, 256)]
    public void RmsNormMatchesReference(int rows, int cols)
    {
        float[] x = Random(rows * cols, 1), w = Random(cols, 2), dy = Random(rows * cols, 3);
        float[] y = new float[x.Length], yRef = new float[x.Length], r = new float[rows], rRef = new float[rows];
        RmsNormKernel.Forward(x, w, y, r, rows, cols, 1e-5f);
        LlamaKernelsReference.RmsNormForward(x, w, yRef, rRef, rows, cols, 1e-5f);
        Close(y, yRef, 1e-5, 1e-6, "forward");
        Close(r, rRef, 1e-5, 0, "rstd");
        float[] dx = Random(x.Length, 4), dxRef = (float[])dx.Clone(), dw = Random(cols, 5),
            dwRef = (float[])dw.Clone();
        RmsNormKernel.Backward(x, w, r, dy, dx, dw, rows, cols, new float[2 * cols]);
        LlamaKernelsReference.RmsNormBackward(x, w, rRef, dy, dxRef, dwRef, rows, cols);
        Close(dx, dxRef, 1e-4, 1e-5, "dx");
        Close(dw, dwRef, 1e-4, 1e-4, "dw");
        RmsNormKernel.Forward(x, w, x, r, rows, cols, 1e-5f);   // in place
        Close(x, yRef, 1e-5, 1e-6, "in place");
    }

    [Test]
    public void SiluMatchesReferenceForEveryLength0To300()
    {
        for (int n = 0; n <= 300; n++)
        {
            float[] x = Random(n, (ulong)n + 1, -8f, 8f), dy = Random(n, (ulong)n + 400);
            float[] y = new float[n], yRef = new float[n], dx = Random(n, 9), dxRef = (float[])dx.Clone();
            SiluKernel.Forward(x, y);
            LlamaKernelsReference.SiluForward(x, yRef);
            Close(y, yRef, 1e-5, 1e-6, $"silu n={n}");
            SiluKernel.Backward(x, dy, dx);
            LlamaKernelsReference.SiluBackward(x, dy, dxRef);
            Close(dx, dxRef, 1e-5, 1e-5, $"silu backward n={n}");
        }
    }

    // Lengths around the 256-element chunk and 16,384-element thread split, both gradient modes, one and two threads.
    [TestCase(1), TestCase(7), TestCase(63), TestCase(65), TestCase(129), TestCase(255), TestCase(257),
        TestCase(40_000)]
    public void SwiGluMatchesReference(int n)
    {
        float[] g = Random(n, 41, -8f, 8f), u = Random(n, 42), dy = Random(n, 43);
        float[] yRef = new float[n], dgRef = Random(n, 44), duRef = Random(n, 45);
        LlamaKernelsReference.SwiGluForward(g, u, yRef);
        float[] dgStart = (float[])dgRef.Clone(), duStart = (float[])duRef.Clone();
        LlamaKernelsReference.SwiGluBackward(g, u, dy, dgRef, duRef);
        float[] dgFresh = new float[n], duFresh = new float[n];
        LlamaKernelsReference.SwiGluBackward(g, u, dy, dgFresh, duFresh);
        foreach (int threads in new[] { 1, 2 })
            using (ComputeThreads.Use(threads))
            {
                float[] y = new float[n];
                SwiGluKernel.Forward(g, u, y);
                Close(y, yRef, 1e-5, 1e-5, $"forward, {threads} threads");
                float[] dg = (float[])dgStart.Clone(), du = (float[])duStart.Clone();
                SwiGluKernel.Backward(g, u, dy, dg, false, du, false);
                Close(dg, dgRef, 1e-5, 1e-5, $"accumulated ∂gate, {threads} threads");
                Close(du, duRef, 1e-5, 1e-5, $"accumulated ∂up, {threads} threads");
                dg = Random(n, 46); du = Random(n, 47);   // stale contents, overwritten
                SwiGluKernel.Backward(g, u, dy, dg, true, du, true);
                Close(dg, dgFresh, 1e-5, 1e-5, $"written ∂gate, {threads} threads");
                Close(du, duFresh, 1e-5, 1e-5, $"written ∂up, {threads} threads");
                dg = new float[n];
                SwiGluKernel.Backward(g, u, dy, dg, true, default, false);
                Close(dg, dgFresh, 1e-5, 1e-5, $"∂gate alone, {threads} threads");
            }
    }

    // The fused kernel forms each value with SiluKernel's calls and the multiply's: the chain's values exactly.
    [TestCase(1), TestCase(65), TestCase(300), TestCase(40_000)]
    public void SwiGluGivesSiluThenMultiplysValues(int n)
    {
        float[] g = Random(n, 51, -8f, 8f), u = Random(n, 52), dy = Random(n, 53);
        float[] s = new float[n], chainY = new float[n], y = new float[n];
        SiluKernel.Forward(g, s);
        System.Numerics.Tensors.TensorPrimitives.Multiply(s, u, chainY);
        SwiGluKernel.Forward(g, u, y);
        Assert.That(y, Is.EqualTo(chainY), "forward");
        // The chain's backward: ∂s = ∂y ⊙ u and ∂u = ∂y ⊙ s (MulOp), then ∂g += ∂s ⊙ silu′(g) (SiluKernel).
        float[] ds = new float[n], chainDu = new float[n], chainDg = Random(n, 54), dg = (float[])chainDg.Clone();
        System.Numerics.Tensors.TensorPrimitives.Multiply(dy, u, ds);
        System.Numerics.Tensors.TensorPrimitives.Multiply(dy, s, chainDu);
        SiluKernel.Backward(g, ds, chainDg);
        float[] du = new float[n];
        SwiGluKernel.Backward(g, u, dy, dg, false, du, true);
        Assert.That(du, Is.EqualTo(chainDu), "∂up");
        Assert.That(dg, Is.EqualTo(chainDg), "∂gate");
    }

    [Test]
    public void SwiGluRefusesSpansThatDoNotFit()
    {
        Assert.Throws<ArgumentException>(() => SwiGluKernel.Forward(new float[4], new float[3], new float[4]));
        Assert.Throws<ArgumentException>(() => SwiGluKernel.Backward(new float[4], new float[4], new float[4],
            new float[3], true, default, false));
    }

    [TestCase(1, 1, 1, 2, 0), TestCase(2, 7, 3, 8, 5), TestCase(1, 63, 2, 64, 0), TestCase(1, 65, 1, 6, 129),
        TestCase(2, 3, 4, 130, 1)]
    public void RopeMatchesReferenceAndItsBackwardIsTheTranspose(int batch, int time, int heads, int headDim, int start)
    {
        var rope = new RotaryEmbedding(headDim, 10000, null);
        rope.Ensure(start + time);
        int n = batch * time * heads * headDim;
        float[] x = Random(n, 11), y = new float[n], yRef = new float[n];
        RopeKernel.Forward(x, y, batch, time, heads, headDim, start, rope.Cos, rope.Sin);
        LlamaKernelsReference.RopeForward(x, yRef, batch, time, heads, headDim, start,
            rope.InverseFrequencies.Select(f => (double)f).ToArray());
        Close(y, yRef, 1e-4, 1e-4, "forward");
        // <R·x, d> = <x, Rᵀ·d> for a random d: the backward is the transpose of the forward.
        float[] d = Random(n, 12), rtd = new float[n];
        RopeKernel.Backward(d, rtd, batch, time, heads, headDim, start, rope.Cos, rope.Sin);
        double lhs = 0, rhs = 0;
        for (int i = 0; i < n; i++) { lhs += (double)y[i] * d[i]; rhs += (double)x[i] * rtd[i]; }
        Assert.That(lhs, Is.EqualTo(rhs).Within(1e-4 * Math.Max(1, Math.Abs(lhs))));
        Assert.Throws<ArgumentException>(() => RopeKernel.Forward(x, y, batch, time, heads, headDim, start + 1_000_000,
            rope.Cos, rope.Sin));
    }

    // Below ProductRows (16) new tokens the kernel runs row by row, from it as products: both against the twin, with
    // and without a cached prefix, grouped heads, head sizes 1, 7, 8, 64 and 65.
    [TestCase(1, 1, 1, 1, 0), TestCase(7, 4, 2, 8, 0), TestCase(1, 6, 3, 16, 62), TestCase(3, 8, 1, 65, 63),
        TestCase(65, 2, 2, 7, 0), TestCase(1, 12, 12, 64, 128), TestCase(15, 9, 3, 64, 1), TestCase(16, 9, 3, 64, 0),
        TestCase(17, 3, 1, 1, 0), TestCase(63, 4, 2, 8, 65), TestCase(64, 9, 3, 64, 192), TestCase(129, 2, 1, 7, 1),
        TestCase(128, 1, 1, 65, 128)]
    public void CachedAttentionMatchesReference(int n, int heads, int kvHeads, int headDim, int start)
    {
        int span = start + n, row = kvHeads * headDim;
        float[] q = Random(n * heads * headDim, 21), k = Random(span * row + 5, 22), v = Random(span * row + 5, 23);
        float[] o = new float[q.Length], oRef = new float[q.Length];
        CachedAttentionKernel.Forward(q, k, v, o, n, heads, kvHeads, headDim, start, 1f / MathF.Sqrt(headDim));
        LlamaKernelsReference.CachedAttention(q, k, v, oRef, n, heads, kvHeads, headDim, start,
            1f / MathF.Sqrt(headDim));
        Close(o, oRef, 1e-4, 1e-5, "attention");
    }

    // The products path's parts are heads and each head's products run on one thread, so 1, 2 and 3 threads give the
    // same bits; and a chunk's tokens get what the row-by-row path gives them, to rounding.
    // Long cached prefixes (1,100 and 2,048 rows) take the GEMM's split by depth; one head lets the GEMM itself use
    // the pool; 129 and 200 new tokens cross the 64-row blocks.
    [TestCase(16, 9, 3, 64, 0), TestCase(64, 9, 3, 64, 64), TestCase(129, 4, 2, 8, 7), TestCase(33, 1, 1, 64, 0),
        TestCase(17, 1, 1, 64, 2048), TestCase(20, 9, 3, 64, 1100), TestCase(200, 2, 1, 64, 900)]
    public void CachedAttentionProductsDoNotDependOnThreadsAndMatchTheRows(int n, int heads, int kvHeads, int headDim,
        int start)
    {
        int span = start + n, row = kvHeads * headDim;
        float[] q = Random(n * heads * headDim, 31), k = Random(span * row, 32), v = Random(span * row, 33);
        float Scale() => 1f / MathF.Sqrt(headDim);
        float[] one = new float[q.Length];
        using (ComputeThreads.Use(1))
            CachedAttentionKernel.Forward(q, k, v, one, n, heads, kvHeads, headDim, start, Scale());
        foreach (int threads in new[] { 2, 3 })
        {
            float[] o = new float[q.Length];
            using (ComputeThreads.Use(threads))
                CachedAttentionKernel.Forward(q, k, v, o, n, heads, kvHeads, headDim, start, Scale());
            Assert.That(o, Is.EqualTo(one), $"{threads} threads");
        }
        float[] rows = new float[q.Length];
        try
        {
            CachedAttentionKernel.ProductsDisabled = true;
            CachedAttentionKernel.Forward(q, k, v, rows, n, heads, kvHeads, headDim, start, Scale());
        }
        finally { CachedAttentionKernel.ProductsDisabled = false; }
        Close(one, rows, 1e-4, 1e-5, "products against rows");
    }

    [Test]
    public void CachedAttentionRefusesShapesThatDoNotFit()
    {
        Assert.Throws<ArgumentException>(() => CachedAttentionKernel.Forward(new float[8], new float[8], new float[8],
            new float[8], 1, 3, 2, 8, 0, 1f));
        Assert.Throws<ArgumentException>(() => CachedAttentionKernel.Forward(new float[8], new float[7], new float[8],
            new float[8], 1, 1, 1, 8, 0, 1f));
    }
}
