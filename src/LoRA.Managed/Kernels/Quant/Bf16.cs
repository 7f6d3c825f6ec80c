using System.Numerics.Tensors;

namespace LoRA.Managed.Kernels;

/// <summary>
/// bfloat16 storage for a frozen weight: the top 16 bits of an IEEE float, rounded to nearest even as PyTorch's
/// <c>tensor.to(torch.bfloat16)</c> rounds (NaN stays a quiet NaN). Expanding is a 16-bit shift, so it is exact and
/// cheap enough to do inside the GEMM's packing of B.
/// </summary>
public static class Bf16
{
    /// <summary>Rounds each float to bfloat16 bits (round to nearest, ties to even).</summary>
    public static void Quantize(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        Check(source.Length, destination.Length, nameof(Quantize));
        for (int i = 0; i < source.Length; i++) destination[i] = FromFloat(source[i]);
    }

    /// <summary>Expands bfloat16 bits to floats (exact).</summary>
    public static void Dequantize(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        Check(source.Length, destination.Length, nameof(Dequantize));
        // Widening to uint and shifting left by 16 is the whole conversion, so it vectorises as widen + shift.
        Span<uint> bits = System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(destination[..source.Length]);
        int i = 0, width = System.Numerics.Vector<ushort>.Count;
        if (System.Numerics.Vector.IsHardwareAccelerated)
            for (; i + width <= source.Length; i += width)
            {
                System.Numerics.Vector.Widen(new System.Numerics.Vector<ushort>(source.Slice(i, width)),
                    out System.Numerics.Vector<uint> low, out System.Numerics.Vector<uint> high);
                (low << 16).CopyTo(bits.Slice(i, width / 2));
                (high << 16).CopyTo(bits.Slice(i + width / 2, width / 2));
            }
        for (; i < source.Length; i++) bits[i] = (uint)source[i] << 16;
    }

    /// <summary>One float to bfloat16 bits, round to nearest even.</summary>
    public static ushort FromFloat(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        uint rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }

    /// <summary>One bfloat16 value as a float (exact).</summary>
    public static float ToFloat(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    internal static void Check(int source, int destination, string what)
    {
        if (destination < source)
            throw new ArgumentException($"{what}: destination has {destination} elements, source {source}.");
    }
}

/// <summary>
/// IEEE half (F16) storage for a frozen weight, through .NET's <see cref="Half"/> conversions (round to nearest
/// even, as PyTorch's <c>.half()</c>); <see cref="TensorPrimitives"/> vectorises both directions.
/// </summary>
public static class F16
{
    /// <summary>Rounds each float to half precision.</summary>
    public static void Quantize(ReadOnlySpan<float> source, Span<Half> destination)
    {
        Bf16.Check(source.Length, destination.Length, nameof(Quantize));
        TensorPrimitives.ConvertToHalf(source, destination);
    }

    /// <summary>Expands halves to floats (exact).</summary>
    public static void Dequantize(ReadOnlySpan<Half> source, Span<float> destination)
    {
        Bf16.Check(source.Length, destination.Length, nameof(Dequantize));
        TensorPrimitives.ConvertToSingle(source, destination);
    }
}
