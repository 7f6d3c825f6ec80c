using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Kernels;

/// <summary>
/// <see cref="QuantizedMatrix"/>: any range expands to what the formats' scalar twins give for the whole matrix,
/// and the decoding GEMV (y = W·x) and its input gradient (dx += Wᵀ·dy) match a reference that dequantises fully
/// and multiplies, on awkward shapes; the GEMM packing's row runs expand bit for bit as the twins.
/// </summary>
public class QuantizedMatrixTests
{
    private static readonly int[] Shapes = [1, 7, 63, 65, 129];

    private static float[] Rand(int n, int seed, float std = 0.05f)
    {
        var x = new float[n];
        new TorchGenerator((ulong)seed).FillNormal(x, 0f, std);
        return x;
    }

    /// <summary>The whole matrix expanded by the scalar twins.</summary>
    private static float[] ReferenceExpand(float[] w, int rows, int columns, BaseDType dtype)
    {
        switch (dtype)
        {
            case BaseDType.F32: return (float[])w.Clone();
            case BaseDType.Bf16: return w.Select(v => Bf16.ToFloat(QuantReference.Bf16FromFloat(v))).ToArray();
            case BaseDType.F16: return w.Select(v => (float)(Half)v).ToArray();
            case BaseDType.Int8:
                var (q, s) = QuantReference.Int8Quantize(w, rows, columns);
                return QuantReference.Int8Dequantize(q, s, rows, columns);
            default:
                var (idx, absmax) = QuantReference.Nf4Quantize(w);
                var codes = new byte[absmax.Length];
                var absmax2 = new float[DynamicQuant8.BlockCount(absmax.Length)];
                float offset = DynamicQuant8.Quantize(absmax, codes, absmax2);
                var back = new float[absmax.Length];
                DynamicQuant8.Dequantize(codes, absmax2, offset, back);
                return QuantReference.Nf4Dequantize(idx, back);
        }
    }

    [Test]
    public void ExpandsLikeTheTwins([Values] BaseDType dtype, [ValueSource(nameof(Shapes))] int rows,
        [ValueSource(nameof(Shapes))] int columns)
    {
        float[] w = Rand(rows * columns, rows * 131 + columns);
        var m = QuantizedMatrix.Quantize(w, rows, columns, dtype);
        float[] expected = ReferenceExpand(w, rows, columns, dtype);
        var all = new float[w.Length];
        m.ExpandRange(0, all);
        Assert.That(all, Is.EqualTo(expected));
        // Ranges that start and stop mid-row and mid-block.
        for (int start = 0; start < w.Length; start += 37)
        {
            int len = Math.Min(w.Length - start, 101);
            var part = new float[len];
            m.ExpandRange(start, part);
            Assert.That(part, Is.EqualTo(expected.AsSpan(start, len).ToArray()), $"[{start}, +{len})");
        }
    }

    [Test]
    public unsafe void RowRunsExpandLikeTheTwins([Values] BaseDType dtype, [ValueSource(nameof(Shapes))] int rows,
        [Values(1, 7, 33, 65, 128, 129)] int columns)
    {
        float[] w = Rand(rows * columns, rows * 7 + columns);
        if (dtype == BaseDType.F16)
        {
            // Halves' specials ride through the register conversion: subnormals, ±0, the largest, ±∞, NaN.
            float[] specials = [0f, -0f, 6e-8f, -3e-6f, 6.1e-5f, 65504f, -65504f, 1e6f, float.NegativeInfinity,
                float.NaN, 1f / 3f, -2.5e-7f];
            for (int i = 0; i < w.Length; i++) if (i % 3 == 0) w[i] = specials[i / 3 % specials.Length];
        }
        var m = QuantizedMatrix.Quantize(w, rows, columns, dtype);
        float[] expected = ReferenceExpand(w, rows, columns, dtype);
        var run = new float[columns];
        for (int r = 0; r < rows; r++)
            // Whole rows, ragged starts and ends, and the 32-value aligned steps a panel packs one at a time.
            foreach (var (c0, len) in new[] { (0, columns), (1, columns - 1), (columns / 2, columns - columns / 2),
                (0, Math.Min(32, columns)), (columns >= 64 ? 32 : 0, Math.Min(32, columns)) })
            {
                fixed (float* d = run) m.ExpandRow(r, c0, len, d);
                for (int j = 0; j < len; j++)
                    Assert.That(BitConverter.SingleToUInt32Bits(run[j]),
                        Is.EqualTo(BitConverter.SingleToUInt32Bits(expected[r * columns + c0 + j])),
                        $"W[{r}, {c0 + j}]");
            }
    }

    [Test]
    public void GemvAndItsGradientMatchFullDequantisation([Values] BaseDType dtype,
        [ValueSource(nameof(Shapes))] int rows, [ValueSource(nameof(Shapes))] int columns)
        => CheckGemv(dtype, rows, columns);

    [Test]
    public void GemvOnWholeBlockRowsMatches([Values] BaseDType dtype, [Values(1, 7, 65, 400)] int rows,
        [Values(64, 128, 768)] int columns) => CheckGemv(dtype, rows, columns); // NF4's fused per-block dot

    [Test]
    public void Nf4GemvIsBitwiseTheSameOnOneAndTwoThreads()
    {
        // Enough rows (1,000 × 768) for the decoding product to split its rows over two threads.
        const int rows = 1000, columns = 768;
        var m = QuantizedMatrix.Quantize(Rand(rows * columns, 11), rows, columns, BaseDType.Nf4);
        float[] x = Rand(columns, 12, 1f), one = new float[rows], two = new float[rows];
        using (ComputeThreads.Use(1)) m.MultiplyVector(x, one);
        using (ComputeThreads.Use(2)) m.MultiplyVector(x, two);
        Assert.That(two.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(one.Select(BitConverter.SingleToInt32Bits)));
        CheckGemv(BaseDType.Nf4, rows, columns);
    }

    private static void CheckGemv(BaseDType dtype, int rows, int columns)
    {
        float[] w = Rand(rows * columns, rows * 7 + columns);
        var m = QuantizedMatrix.Quantize(w, rows, columns, dtype);
        float[] full = ReferenceExpand(w, rows, columns, dtype);
        float[] x = Rand(columns, 5, 1f), dy = Rand(rows, 6, 1f);
        var y = new float[rows];
        m.MultiplyVector(x, y);
        float[] dx = Rand(columns, 8, 1f), dxRef = (float[])dx.Clone();
        m.MultiplyVectorTransposedAccumulate(dy, dx);
        for (int r = 0; r < rows; r++)
        {
            double sum = 0, mag = 0;
            for (int c = 0; c < columns; c++)
            {
                double t = full[r * columns + c] * x[c];
                sum += t;
                mag += Math.Abs(t);
            }
            Assert.That(y[r], Is.EqualTo(sum).Within(1e-5 * mag + 1e-7), $"y[{r}]");
        }
        for (int c = 0; c < columns; c++)
        {
            double sum = dxRef[c], mag = Math.Abs(dxRef[c]);
            for (int r = 0; r < rows; r++)
            {
                double t = dy[r] * full[r * columns + c];
                sum += t;
                mag += Math.Abs(t);
            }
            Assert.That(dx[c], Is.EqualTo(sum).Within(1e-5 * mag + 1e-7), $"dx[{c}]");
        }
    }

    [Test]
    public void StorageShrinksAsTheFormatSays()
    {
        const int rows = 768, columns = 768;
        float[] w = Rand(rows * columns, 3);
        long Bytes(BaseDType d) => QuantizedMatrix.Quantize(w, rows, columns, d).StorageBytes;
        Assert.That(Bytes(BaseDType.F32), Is.EqualTo(4L * rows * columns));
        Assert.That(Bytes(BaseDType.Bf16), Is.EqualTo(2L * rows * columns));
        Assert.That(Bytes(BaseDType.Int8), Is.EqualTo((long)rows * columns + 4 * rows));
        // NF4: 4 bits a weight, one byte per 64-block scale, 4 bytes per 256 scales, the offset.
        Assert.That(Bytes(BaseDType.Nf4), Is.EqualTo(rows * columns / 2 + rows * columns / 64 + 4 * 36 + 4));
    }

    [Test]
    public void BadShapeIsOneLine()
    {
        var e = Assert.Throws<ArgumentException>(() => QuantizedMatrix.Quantize(new float[5], 2, 3, BaseDType.Nf4));
        Assert.That(e!.Message, Does.Contain("[2, 3]"));
    }
}
