using System.Buffers.Binary;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoRA.Managed.Kernels;

/// <summary>
/// NF4, QLoRA's 4-bit NormalFloat, exactly as bitsandbytes stores it: the flattened weight is cut into blocks of
/// <see cref="BlockSize"/> (64) values; each block keeps its absmax, and each value the index of the nearest of
/// the 16 <see cref="Levels"/> to <c>value/absmax</c>. Two indices share a byte, the first in the high nibble.
/// The per-block absmax is itself compressed by <see cref="DynamicQuant8"/> (QLoRA's double quantisation).
/// Expanding is <c>Levels[index]·absmax</c>.
/// </summary>
public static class Nf4
{
    /// <summary>Values per absmax block (bitsandbytes' default for 4-bit weights).</summary>
    public const int BlockSize = 64;

    /// <summary>
    /// The 16 levels, copied from bitsandbytes (<c>csrc/kernels.cu</c>, <c>nf4_dequantization_lut</c>).
    /// </summary>
    public static ReadOnlySpan<float> Levels =>
    [
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    ];

    /// <summary>Half the widest gap between neighbouring levels (-1 to -0.696): the worst rounding.</summary>
    public static float HalfLargestGap => (Levels[1] - Levels[0]) / 2f;

    // Midpoints between neighbouring levels: a normalised value above Midpoints[i] rounds to level i+1 or higher.
    private static readonly float[] Midpoints = MakeMidpoints();

    // Every byte's two values, so expanding reads one table entry per two weights instead of two shifts and loads.
    private static readonly float[] PairTable = MakePairTable();

    /// <summary>Number of absmax blocks for <paramref name="length"/> values.</summary>
    public static int BlockCount(long length) => checked((int)((length + BlockSize - 1) / BlockSize));

    /// <summary>Bytes of packed indices for <paramref name="length"/> values.</summary>
    public static int PackedLength(long length) => checked((int)((length + 1) / 2));

    /// <summary>
    /// Quantises <paramref name="source"/> blockwise: <paramref name="absmax"/> receives each block's absmax and
    /// <paramref name="packed"/> the indices, two per byte (an odd tail leaves the low nibble 0).
    /// </summary>
    public static void Quantize(ReadOnlySpan<float> source, Span<byte> packed, Span<float> absmax)
    {
        if (packed.Length < PackedLength(source.Length) || absmax.Length < BlockCount(source.Length))
            throw new ArgumentException($"Nf4.Quantize: {source.Length} values need {PackedLength(source.Length)} "
                + $"bytes and {BlockCount(source.Length)} scales; got {packed.Length} and {absmax.Length}.");
        packed[..PackedLength(source.Length)].Clear();
        float[] mid = Midpoints;
        for (int b = 0, start = 0; start < source.Length; b++, start += BlockSize)
        {
            ReadOnlySpan<float> block = source.Slice(start, Math.Min(BlockSize, source.Length - start));
            float max = MathF.Abs(System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(block));
            absmax[b] = max;
            // bitsandbytes multiplies by the reciprocal; an all-zero block maps to index 7 (level 0).
            float inverse = max == 0f ? 0f : 1f / max;
            for (int i = 0; i < block.Length; i++)
            {
                int index = Nearest(block[i] * inverse, mid);
                int at = start + i;
                packed[at >> 1] |= (byte)((at & 1) == 0 ? index << 4 : index);
            }
        }
    }

    /// <summary>
    /// Expands <paramref name="destination"/>.Length values starting at element <paramref name="start"/> of the
    /// flattened weight; the range may start and end anywhere (a GEMM panel, a row).
    /// </summary>
    public static void Dequantize(ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax, long start,
        Span<float> destination) => Dequantize(packed, absmax, 0, start, destination);

    /// <summary>
    /// As <see cref="Dequantize(ReadOnlySpan{byte}, ReadOnlySpan{float}, long, Span{float})"/>, with
    /// <paramref name="absmax"/> holding only blocks from <paramref name="firstBlock"/> on (a caller that expands
    /// double-quantised scales a range at a time).
    /// </summary>
    public static void Dequantize(ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax, int firstBlock, long start,
        Span<float> destination)
    {
        long end = start + destination.Length;
        if (start < (long)firstBlock * BlockSize || (end + 1) / 2 > packed.Length
            || BlockCount(end) - firstBlock > absmax.Length)
            throw new ArgumentException($"Nf4.Dequantize: elements [{start}, {end}) are outside {packed.Length} "
                + $"bytes / blocks {firstBlock}..{firstBlock + absmax.Length}.");
        float[] pairs = PairTable;
        ReadOnlySpan<float> levels = Levels;
        int d = 0;
        long at = start;
        while (d < destination.Length)
        {
            int block = (int)(at / BlockSize);
            float scale = absmax[block - firstBlock];
            int stop = (int)Math.Min(destination.Length, d + ((long)(block + 1) * BlockSize - at));
            if ((at & 1) == 1) { destination[d++] = levels[packed[(int)(at >> 1)] & 15] * scale; at++; }
            // The block's body two at a time through the byte table (blocks are even-sized, so pairs never straddle).
            int p = (int)(at >> 1);
            if (Avx2.IsSupported)
                for (; d + 8 <= stop; d += 8, at += 8, p += 4)
                    Expand8(BinaryPrimitives.ReadUInt32LittleEndian(packed.Slice(p, 4)), scale,
                        destination.Slice(d, 8));
            for (; d + 1 < stop; d += 2, at += 2, p++)
            {
                int pair = packed[p] << 1;
                destination[d] = pairs[pair] * scale;
                destination[d + 1] = pairs[pair + 1] * scale;
            }
            if (d < stop) { destination[d++] = levels[packed[(int)(at >> 1)] >> 4] * scale; at++; }
        }
    }

    // Eight scaled values from four bytes.
    private static void Expand8(uint fourBytes, float scale, Span<float> destination) =>
        (Levels8(fourBytes) * scale)
            .StoreUnsafe(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(destination));

    // The eight levels four packed bytes hold: each lane shifts its nibble down (high nibble first), then two
    // in-register 8-entry table lookups (levels 0-7 and 8-15) and a select by bit 3 replace eight table loads (AVX2).
    private static Vector256<float> Levels8(uint fourBytes)
    {
        Vector256<uint> shifts = Vector256.Create(4u, 0u, 12u, 8u, 20u, 16u, 28u, 24u);
        Vector256<uint> index = Avx2.ShiftRightLogicalVariable(Vector256.Create(fourBytes), shifts)
            & Vector256.Create(15u);
        Vector256<float> low = Avx2.PermuteVar8x32(LowLevels, index.AsInt32());
        Vector256<float> high = Avx2.PermuteVar8x32(HighLevels, index.AsInt32());
        Vector256<float> upper = Vector256.GreaterThan(index, Vector256.Create(7u)).AsSingle();
        return Vector256.ConditionalSelect(upper, high, low);
    }

    /// <summary>Whether <see cref="BlockDot"/> has its vector form here (AVX2).</summary>
    public static bool FusedDotSupported => Avx2.IsSupported;

    /// <summary>
    /// <c>Σ Levels[index_i]·x_i</c> over one block's 32 packed bytes, without the block's scale (decoding multiplies
    /// by it once per block); the levels never leave registers.
    /// </summary>
    public static float BlockDot(ReadOnlySpan<byte> packedBlock, ReadOnlySpan<float> x)
    {
        if (packedBlock.Length != BlockSize / 2 || x.Length != BlockSize)
            throw new ArgumentException($"Nf4.BlockDot: needs {BlockSize / 2} bytes and {BlockSize} values.");
        Vector256<float> acc = Vector256<float>.Zero;
        for (int p = 0, d = 0; p < packedBlock.Length; p += 4, d += 8)
            acc += Levels8(BinaryPrimitives.ReadUInt32LittleEndian(packedBlock.Slice(p, 4)))
                * Vector256.Create(x.Slice(d, 8));
        return Vector256.Sum(acc);
    }

    private static readonly Vector256<float> LowLevels = Vector256.Create(Levels[..8]);
    private static readonly Vector256<float> HighLevels = Vector256.Create(Levels[8..]);

    /// <summary>The index of the level nearest to a value in [-1, 1] (a tie goes to the lower level).</summary>
    public static int Nearest(float normalized) => Nearest(normalized, Midpoints);

    private static int Nearest(float x, float[] mid)
    {
        // Four comparisons down a balanced tree over the 15 midpoints, as bitsandbytes' dQuantizeNF4 does.
        int lo = 0;
        if (x > mid[lo + 7]) lo += 8;
        if (x > mid[lo + 3]) lo += 4;
        if (x > mid[lo + 1]) lo += 2;
        if (x > mid[lo]) lo += 1;
        return lo;
    }

    private static float[] MakeMidpoints()
    {
        var m = new float[16];
        for (int i = 0; i < 15; i++) m[i] = (Levels[i] + Levels[i + 1]) / 2f;
        m[15] = float.PositiveInfinity;
        return m;
    }

    private static float[] MakePairTable()
    {
        var t = new float[512];
        for (int b = 0; b < 256; b++) { t[2 * b] = Levels[b >> 4]; t[2 * b + 1] = Levels[b & 15]; }
        return t;
    }
}
