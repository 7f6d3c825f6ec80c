using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoRA.Managed.Kernels;

/// <summary>
/// The GEMM's packing reads W a run of one row at a time (<see cref="QuantizedPanels"/>): 32 values per call when
/// the panels are packed one by one (64 rows of activations). <see cref="ExpandRange"/> finds the row by a
/// division and goes through span conversions sized for long runs; this path takes the row as given and expands
/// 16 values a step in registers, bit for bit as <see cref="ExpandRange"/> does.
/// </summary>
public sealed unsafe partial class QuantizedMatrix
{
    /// <summary>Expands <c>W[row, column .. column + length)</c> into <paramref name="destination"/>; the caller
    /// (the GEMM's packing) keeps the run inside the row.</summary>
    internal void ExpandRow(int row, int column, int length, float* destination)
    {
        long start = (long)row * Columns + column;
        if (DType == BaseDType.Nf4)
        {
            // A panel's step on 32-aligned columns of a row of whole blocks: half a block, 16 bytes, one scale.
            if (length == 32 && (start & 31) == 0 && Avx512F.IsSupported)
            {
                fixed (byte* q = _nf4)
                    Nf4Decode32(q + (start >> 1), BlockScale((int)(start / Nf4.BlockSize)), destination);
            }
            else ExpandNf4(checked((int)start), new Span<float>(destination, length));
            return;
        }
        if (!Avx512F.IsSupported || DType == BaseDType.F32)
        {
            ExpandRange(start, new Span<float>(destination, length));
            return;
        }
        int i = 0;
        switch (DType)
        {
            case BaseDType.Int8:
                fixed (sbyte* q = _int8)
                {
                    // sbyte -> int -> float is exact, then one rounding in the multiply: the scalar form's result.
                    float scale = _rowScales![row];
                    for (; i + 16 <= length; i += 16)
                        (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(
                            Vector128.Load(q + start + i))) * scale).Store(destination + i);
                    for (; i < length; i++) destination[i] = q[start + i] * scale;
                }
                return;
            case BaseDType.Bf16:
                fixed (ushort* q = _bf16)
                {
                    for (; i + 16 <= length; i += 16)
                        (Avx512F.ConvertToVector512UInt32(Vector256.Load(q + start + i)) << 16).AsSingle()
                            .Store(destination + i);
                    for (; i < length; i++) destination[i] = Bf16.ToFloat(q[start + i]);
                }
                return;
            default:
                fixed (Half* q = _f16)
                {
                    for (; i + 16 <= length; i += 16)
                        HalvesToSingles(Vector256.Load((ushort*)(q + start + i))).Store(destination + i);
                    for (; i < length; i++) destination[i] = (float)q[start + i];
                }
                return;
        }
    }

    /// <summary>
    /// Sixteen halves to floats, exactly as <c>(float)half</c>: the exponent and mantissa bits moved up 13 places
    /// read as a float 2^112 times too small (a half's subnormals land on float subnormals), so one multiply by 2^112
    /// is exact; infinities and NaNs (exponent all ones) get the float's all-ones exponent and NaNs the quiet bit,
    /// as .NET's conversion gives; then the sign.
    /// </summary>
    private static Vector512<float> HalvesToSingles(Vector256<ushort> halves)
    {
        Vector512<uint> h = Avx512F.ConvertToVector512UInt32(halves);
        Vector512<uint> magnitude = h & Vector512.Create(0x7FFFu), shifted = magnitude << 13;
        // 0x77800000 is 2^112 as a float.
        Vector512<uint> finite = (shifted.AsSingle() * Vector512.Create(0x77800000u).AsSingle()).AsUInt32();
        Vector512<uint> quiet =
            Vector512.GreaterThan(magnitude, Vector512.Create(0x7C00u)) & Vector512.Create(0x400000u);
        Vector512<uint> special = shifted | Vector512.Create(0x7F800000u) | quiet;
        Vector512<uint> bits = Vector512.ConditionalSelect(
            Vector512.GreaterThanOrEqual(magnitude, Vector512.Create(0x7C00u)), special, finite);
        return (bits | ((h & Vector512.Create(0x8000u)) << 16)).AsSingle();
    }
}
