using System.Numerics;

namespace LoRA.Managed.Kernels;

/// <summary>
/// int8 storage with one absmax scale per output row (LLM.int8()'s row-wise "vector-wise" quantisation without the
/// outlier split): <c>q = round(127·w/absmax)</c>, <c>w ≈ q·absmax/127</c>. A row's error is at most
/// <c>absmax/127/2</c>. A weight is <c>[rows, columns]</c> row-major, rows being nn.Linear's output features.
/// </summary>
public static class Int8Rowwise
{
    /// <summary>Quantises each row; <paramref name="scales"/> receives <c>absmax/127</c> per row.</summary>
    public static void Quantize(ReadOnlySpan<float> weight, int rows, int columns, Span<sbyte> codes,
        Span<float> scales)
    {
        CheckShape(weight.Length, rows, columns, codes.Length, scales.Length);
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> row = weight.Slice(r * columns, columns);
            float absmax = System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(row);
            absmax = columns == 0 ? 0f : MathF.Abs(absmax);
            float scale = absmax / 127f;
            scales[r] = scale;
            // Multiplying by the reciprocal is what bitsandbytes does; a zero row keeps code 0 everywhere.
            float inverse = absmax == 0f ? 0f : 127f / absmax;
            Span<sbyte> q = codes.Slice(r * columns, columns);
            for (int c = 0; c < columns; c++)
                q[c] = (sbyte)Math.Clamp((int)MathF.Round(row[c] * inverse, MidpointRounding.ToEven), -127, 127);
        }
    }

    /// <summary>Expands one row: <c>destination[c] = codes[c]·scale</c>.</summary>
    public static void DequantizeRow(ReadOnlySpan<sbyte> codes, float scale, Span<float> destination)
    {
        Bf16.Check(codes.Length, destination.Length, nameof(DequantizeRow));
        // sbyte -> short -> int -> float by widening whole vectors, then one multiply: the same one rounding per
        // element as the scalar form, so the result is bit-identical to it.
        int c = 0, w = Vector<sbyte>.Count, q = w / 4;
        if (Vector.IsHardwareAccelerated)
            for (; c + w <= codes.Length; c += w)
            {
                Vector.Widen(new Vector<sbyte>(codes.Slice(c, w)), out Vector<short> s0, out Vector<short> s1);
                Vector.Widen(s0, out Vector<int> i0, out Vector<int> i1);
                Vector.Widen(s1, out Vector<int> i2, out Vector<int> i3);
                (Vector.ConvertToSingle(i0) * scale).CopyTo(destination.Slice(c, q));
                (Vector.ConvertToSingle(i1) * scale).CopyTo(destination.Slice(c + q, q));
                (Vector.ConvertToSingle(i2) * scale).CopyTo(destination.Slice(c + 2 * q, q));
                (Vector.ConvertToSingle(i3) * scale).CopyTo(destination.Slice(c + 3 * q, q));
            }
        for (; c < codes.Length; c++) destination[c] = codes[c] * scale;
    }

    /// <summary>Expands the whole <c>[rows, columns]</c> weight.</summary>
    public static void Dequantize(ReadOnlySpan<sbyte> codes, ReadOnlySpan<float> scales, int rows, int columns,
        Span<float> destination)
    {
        CheckShape(destination.Length, rows, columns, codes.Length, scales.Length);
        for (int r = 0; r < rows; r++)
            DequantizeRow(codes.Slice(r * columns, columns), scales[r], destination.Slice(r * columns, columns));
    }

    private static void CheckShape(int values, int rows, int columns, int codes, int scales)
    {
        long n = (long)rows * columns;
        if (rows < 0 || columns < 0 || values < n || codes < n || scales < rows)
            throw new ArgumentException(
                $"Int8Rowwise: [{rows}, {columns}] needs {n} values and codes and {rows} scales; "
                + $"got {values}, {codes}, {scales}.");
    }
}
