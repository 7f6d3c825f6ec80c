namespace LoRA.Managed.Kernels;

/// <summary>
/// Plain scalar twins of the quantised storage formats (<see cref="Bf16"/>, <see cref="F16"/>,
/// <see cref="Int8Rowwise"/>, <see cref="Nf4"/>): one element at a time, straight from each format's definition,
/// for the tests to hold the optimised versions against.
/// </summary>
public static class QuantReference
{
    /// <summary>bfloat16 by the definition: the nearest bfloat16, ties to the even mantissa.</summary>
    public static ushort Bf16FromFloat(float x)
    {
        if (float.IsNaN(x)) return 0x7FC0;
        uint bits = BitConverter.SingleToUInt32Bits(x);
        ushort down = (ushort)(bits >> 16), up = (ushort)(down + 1);
        if ((bits & 0xFFFF) == 0) return down;
        double lower = BitConverter.UInt32BitsToSingle((uint)down << 16);
        double upper = BitConverter.UInt32BitsToSingle((uint)up << 16);
        // Past the largest finite bfloat16 the next step is 2^128 (rounding there gives infinity, as PyTorch does).
        if (double.IsInfinity(upper)) upper = Math.CopySign(Math.Pow(2, 128), x);
        double dl = Math.Abs(x - lower), du = Math.Abs(upper - x);
        if (dl < du) return down;
        if (du < dl) return up;
        return (down & 1) == 0 ? down : up;
    }

    /// <summary>int8 row-wise by the definition: scale = absmax/127, q = round(w/scale).</summary>
    public static (sbyte[] Codes, float[] Scales) Int8Quantize(float[] w, int rows, int columns)
    {
        var q = new sbyte[rows * columns];
        var s = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            float m = 0f;
            for (int c = 0; c < columns; c++) m = Math.Max(m, Math.Abs(w[r * columns + c]));
            s[r] = m / 127f;
            for (int c = 0; c < columns; c++)
                q[r * columns + c] = m == 0f ? (sbyte)0 : (sbyte)Math.Round(w[r * columns + c] * (127f / m));
        }
        return (q, s);
    }

    /// <summary>int8 expansion: <c>q·scale</c>.</summary>
    public static float[] Int8Dequantize(sbyte[] q, float[] scales, int rows, int columns)
    {
        var w = new float[rows * columns];
        for (int i = 0; i < w.Length; i++) w[i] = q[i] * scales[i / columns];
        return w;
    }

    /// <summary>NF4 by the definition: the nearest level to value/absmax by a linear scan, one index a byte.</summary>
    public static (byte[] Indices, float[] Absmax) Nf4Quantize(float[] w)
    {
        var idx = new byte[w.Length];
        var absmax = new float[(w.Length + Nf4.BlockSize - 1) / Nf4.BlockSize];
        for (int i = 0; i < w.Length; i++)
            absmax[i / Nf4.BlockSize] = Math.Max(absmax[i / Nf4.BlockSize], Math.Abs(w[i]));
        ReadOnlySpan<float> levels = Nf4.Levels;
        for (int i = 0; i < w.Length; i++)
        {
            float m = absmax[i / Nf4.BlockSize];
            float x = m == 0f ? 0f : w[i] * (1f / m);
            int best = 0;
            for (int l = 1; l < 16; l++)
                if (Math.Abs(x - levels[l]) < Math.Abs(x - levels[best])) best = l;
            idx[i] = (byte)best;
        }
        return (idx, absmax);
    }

    /// <summary>NF4 expansion: <c>Levels[index]·absmax</c> for one index per byte.</summary>
    public static float[] Nf4Dequantize(byte[] indices, float[] absmax)
    {
        var w = new float[indices.Length];
        for (int i = 0; i < w.Length; i++) w[i] = Nf4.Levels[indices[i]] * absmax[i / Nf4.BlockSize];
        return w;
    }

    /// <summary>The whole matrix in float32 (the reference path's full dequantisation).</summary>
    public static float[] Dequantize(QuantizedMatrix w)
    {
        ArgumentNullException.ThrowIfNull(w);
        var all = new float[(long)w.Rows * w.Columns];
        w.ExpandRange(0, all);
        return all;
    }

    /// <summary>Plain <c>y = x·Wᵀ</c> over the fully dequantised W, in double: the twin of
    /// <see cref="QuantizedGemm.MultiplyTransposed"/>.</summary>
    public static float[] MultiplyTransposed(QuantizedMatrix w, int n, float[] x)
    {
        float[] wf = Dequantize(w);
        var y = new float[n * w.Rows];
        for (int i = 0; i < n; i++)
            for (int r = 0; r < w.Rows; r++)
            {
                double s = 0;
                for (int c = 0; c < w.Columns; c++) s += (double)x[i * w.Columns + c] * wf[r * w.Columns + c];
                y[i * w.Rows + r] = (float)s;
            }
        return y;
    }

    /// <summary>Plain <c>dy·W</c> over the fully dequantised W, in double: the twin of
    /// <see cref="QuantizedGemm.MultiplyAccumulate"/>.</summary>
    public static float[] MultiplyByWeight(QuantizedMatrix w, int n, float[] dy)
    {
        float[] wf = Dequantize(w);
        var dx = new float[n * w.Columns];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < w.Columns; c++)
            {
                double s = 0;
                for (int r = 0; r < w.Rows; r++) s += (double)dy[i * w.Rows + r] * wf[r * w.Columns + c];
                dx[i * w.Columns + c] = (float)s;
            }
        return dx;
    }
}
