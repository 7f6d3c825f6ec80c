using System.Runtime.Intrinsics;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Transformer;

/// <summary>
/// The shared float exponential (<see cref="FastExp"/>) against <see cref="Math.Exp"/>, and the properties of the
/// fused row kernels that the reference comparisons in <see cref="TransformerKernelTests"/> do not pin: the same bits
/// for a row whichever path computes it (alone, in a pair, in cached attention), and overwriting a gradient giving the
/// bits of adding to zeros.
/// </summary>
public class FusedRowKernelTests
{
    private static float[] Random(int n, ulong seed, float from = -3f, float to = 3f)
    {
        var a = new float[n];
        new TorchGenerator(seed).FillUniform(a, from, to);
        return a;
    }

    private static long UlpDistance(float a, float b)
    {
        int ia = BitConverter.SingleToInt32Bits(a), ib = BitConverter.SingleToInt32Bits(b);
        return Math.Abs((long)ia - ib);
    }

    [Test]
    public void ExpIsWithinTwoUlpOfMathExpOverItsNormalRange()
    {
        long worst = 0;
        float worstAt = 0;
        // Every 97th float from −87 to 88.7 (about 10⁷ values, both signs, every binade in between).
        foreach (float x in Sweep(-87f, 88.7f, 97))
        {
            float expected = (float)Math.Exp(x), actual = FastExp.Exp(x);
            long d = UlpDistance(actual, expected);
            if (d > worst) { worst = d; worstAt = x; }
        }
        Assert.That(worst, Is.LessThanOrEqualTo(2), $"worst at x = {worstAt:R}");
    }

    private static IEnumerable<float> Sweep(float from, float to, int stride)
    {
        // Walk the float bit patterns: negative values from `from` up to −0, then +0 up to `to`.
        for (int bits = BitConverter.SingleToInt32Bits(from); bits >= int.MinValue + 1 && bits < 0; bits -= stride)
        {
            float v = BitConverter.Int32BitsToSingle(bits);
            if (v > 0f || v == 0f) break;
            yield return v;
        }
        for (int bits = 0; BitConverter.Int32BitsToSingle(bits) <= to; bits += stride)
            yield return BitConverter.Int32BitsToSingle(bits);
    }

    [TestCase(float.NegativeInfinity, 0f)]
    [TestCase(-1e30f, 0f)]
    [TestCase(-87.5f, 0f)]                      // below e^−87: flushed to zero, never a subnormal
    [TestCase(0f, 1f)]
    [TestCase(89f, float.PositiveInfinity)]
    [TestCase(float.PositiveInfinity, float.PositiveInfinity)]
    public void ExpEdges(float x, float expected)
    {
        Assert.That(FastExp.Exp(x), Is.EqualTo(expected));
        Assert.That(FastExp.Exp(Vector512.Create(x)), Is.EqualTo(Vector512.Create(expected)));
    }

    [Test]
    public void ExpOfNaNIsNaNAndLargestFiniteStaysFinite()
    {
        Assert.That(float.IsNaN(FastExp.Exp(float.NaN)), Is.True);
        Assert.That(float.IsNaN(FastExp.Exp(Vector512.Create(float.NaN)).ToScalar()), Is.True);
        Assert.That(UlpDistance(FastExp.Exp(88.72f), (float)Math.Exp(88.72f)), Is.LessThanOrEqualTo(2),
            "near float.MaxValue");
    }

    [Test]
    public void VectorExpHasTheScalarsBitsInEveryLane()
    {
        float[] x = Random(16 * 4096, 5, -100f, 95f);
        for (int i = 0; i < x.Length; i += 16)
        {
            Vector512<float> v = FastExp.Exp(Vector512.Create(x.AsSpan(i, 16)));
            for (int j = 0; j < 16; j++)
                Assert.That(BitConverter.SingleToInt32Bits(v[j]),
                    Is.EqualTo(BitConverter.SingleToInt32Bits(FastExp.Exp(x[i + j]))), $"x = {x[i + j]:R}");
        }
    }

    [TestCase(1), TestCase(7), TestCase(16), TestCase(63), TestCase(64), TestCase(65), TestCase(129)]
    public unsafe void EveryCausalRowHasTheBitsOfTheRowAlone(int t)
    {
        // The training path runs rows in pairs; cached attention runs one row of any length: the same bits.
        int matrices = 3, n = matrices * t * t;
        float[] x = Random(n, (ulong)t, -6f, 6f), p = new float[n];
        CausalSoftmaxKernel.Forward(x, p, matrices, t, 0.25f);
        float[] alone = new float[t];
        fixed (float* px = x, pa = alone)
            for (int r = 0; r < matrices * t; r++)
            {
                int len = r % t + 1;
                SoftmaxRow.Forward(px + (long)r * t, pa, len, 0.25f);
                for (int j = 0; j < t; j++)
                    Assert.That(p[r * t + j], Is.EqualTo(j < len ? alone[j] : 0f), $"row {r}, column {j}");
            }
    }

    [TestCase(1), TestCase(7), TestCase(63), TestCase(64), TestCase(65), TestCase(129)]
    public void CausalSoftmaxBackwardOverwriteHasTheBitsOfAddingToZeros(int t)
    {
        int matrices = 2, n = matrices * t * t;
        float[] x = Random(n, 3), dp = Random(n, 4), p = new float[n];
        CausalSoftmaxKernel.Forward(x, p, matrices, t, 0.5f);
        float[] added = new float[n], written = Random(n, 6);   // stale contents: every element must be written
        CausalSoftmaxKernel.Backward(p, dp, added, matrices, t, 0.5f);
        CausalSoftmaxKernel.Backward(p, dp, written, matrices, t, 0.5f, overwrite: true);
        Assert.That(written, Is.EqualTo(added));
    }

    [TestCase(1, 1), TestCase(7, 1), TestCase(63, 2), TestCase(64, 1), TestCase(64, 2), TestCase(65, 2),
     TestCase(129, 1)]
    public void LayerNormBackwardOverwriteHasTheBitsOfAddingToZeros(int cols, int threads)
    {
        using var scope = ComputeThreads.Use(threads);
        int rows = 600;   // enough rows to split dx over two threads
        float[] x = Random(rows * cols, 1), w = Random(cols, 2), b = Random(cols, 3), dy = Random(rows * cols, 4);
        float[] y = new float[x.Length], mean = new float[rows], rstd = new float[rows];
        LayerNormKernel.Forward(x, w, b, y, mean, rstd, rows, cols);
        float[] added = new float[x.Length], written = Random(x.Length, 9);
        float[] dw1 = new float[cols], db1 = new float[cols], dw2 = new float[cols], db2 = new float[cols];
        LayerNormKernel.Backward(x, w, mean, rstd, dy, added, dw1, db1, rows, cols, new float[2 * cols]);
        LayerNormKernel.Backward(x, w, mean, rstd, dy, written, dw2, db2, rows, cols, new float[2 * cols],
            overwriteDx: true);
        Assert.That(written, Is.EqualTo(added));
        Assert.That(dw2, Is.EqualTo(dw1));
        Assert.That(db2, Is.EqualTo(db1));
    }
}
