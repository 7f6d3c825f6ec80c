using System.Runtime.InteropServices;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoRA.Managed.Kernels;

/// <summary>
/// A frozen <c>[rows, columns]</c> weight (rows = nn.Linear's output features) kept in one of the
/// <see cref="BaseDType"/> formats. Nothing expands it whole: <see cref="ExpandRange"/> writes any run of the
/// row-major elements, which is what a GEMM panel (<see cref="QuantizedPanels"/>) or a GEMV row needs; NF4's
/// double-quantised block scales are expanded alongside, one per block.
/// </summary>
public sealed unsafe partial class QuantizedMatrix
{
    private const int Chunk = 4096; // elements a GEMV expands per step: a 16 KiB float buffer on the stack

    private readonly float[]? _f32;
    private readonly ushort[]? _bf16;
    private readonly Half[]? _f16;
    private readonly sbyte[]? _int8;
    private readonly float[]? _rowScales;
    private readonly byte[]? _nf4;
    private readonly byte[]? _absmaxCodes;
    private readonly float[]? _absmax2;
    private readonly float _absmaxOffset;

    /// <summary>Output features.</summary>
    public int Rows { get; }

    /// <summary>Input features.</summary>
    public int Columns { get; }

    /// <summary>The storage format.</summary>
    public BaseDType DType { get; }

    /// <summary>Bytes held for the weight and its scales.</summary>
    public long StorageBytes =>
        4L * (_f32?.Length ?? 0) + 2L * (_bf16?.Length ?? 0) + 2L * (_f16?.Length ?? 0)
        + (_int8?.Length ?? 0) + 4L * (_rowScales?.Length ?? 0)
        + (_nf4 is null ? 0 : _nf4.Length + _absmaxCodes!.Length + 4L * _absmax2!.Length + 4);

    /// <summary>Stores a row-major <c>[rows, columns]</c> float weight in <paramref name="dtype"/>.</summary>
    public static QuantizedMatrix Quantize(ReadOnlySpan<float> weight, int rows, int columns, BaseDType dtype)
    {
        if (rows < 0 || columns < 0 || weight.Length != (long)rows * columns)
            throw new ArgumentException($"QuantizedMatrix: [{rows}, {columns}] needs {(long)rows * columns} values, "
                + $"got {weight.Length}.");
        int n = weight.Length;
        float offset = 0f;
        Array[] arrays;
        switch (dtype)
        {
            case BaseDType.F32:
                arrays = [weight.ToArray()];
                break;
            case BaseDType.Bf16:
                var bf16 = new ushort[n];
                Bf16.Quantize(weight, bf16);
                arrays = [bf16];
                break;
            case BaseDType.F16:
                var f16 = new Half[n];
                F16.Quantize(weight, f16);
                arrays = [f16];
                break;
            case BaseDType.Int8:
                var int8 = new sbyte[n];
                var rowScales = new float[rows];
                Int8Rowwise.Quantize(weight, rows, columns, int8, rowScales);
                arrays = [int8, rowScales];
                break;
            case BaseDType.Nf4:
                arrays = QuantizeNf4(weight, out offset);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown base dtype");
        }
        return new QuantizedMatrix(rows, columns, dtype, arrays, offset);   // the one constructor, as a cache's
    }

    // NF4's three arrays (packed indices, block-scale codes, their scales) and the double-quantisation offset.
    private static Array[] QuantizeNf4(ReadOnlySpan<float> weight, out float offset)
    {
        var packed = new byte[Nf4.PackedLength(weight.Length)];
        // The float block scales only live until they are double-quantised: outside the GC heap, so a model
        // quantised on load (hundreds of these, 0.7 MB each for a 2048×5632 weight) leaves no garbage behind
        // in the resident memory of the run that follows.
        int blocks = Nf4.BlockCount(weight.Length);
        float* scales = (float*)NativeMemory.Alloc((nuint)blocks, sizeof(float));
        try
        {
            var absmax = new Span<float>(scales, blocks);
            Nf4.Quantize(weight, packed, absmax);
            var codes = new byte[blocks];
            var absmax2 = new float[DynamicQuant8.BlockCount(blocks)];
            offset = DynamicQuant8.Quantize(absmax, codes, absmax2);
            return [packed, codes, absmax2];
        }
        finally
        {
            NativeMemory.Free(scales);
        }
    }

    /// <summary>Expands row-major elements <c>[start, start + destination.Length)</c> into floats.</summary>
    public void ExpandRange(long start, Span<float> destination)
    {
        long n = (long)Rows * Columns;
        if (start < 0 || start + destination.Length > n)
            throw new ArgumentOutOfRangeException(nameof(start),
                $"QuantizedMatrix: elements [{start}, {start + destination.Length}) outside {n}.");
        int s = (int)start;
        switch (DType)
        {
            case BaseDType.F32: _f32.AsSpan(s, destination.Length).CopyTo(destination); break;
            case BaseDType.Bf16: Bf16.Dequantize(_bf16.AsSpan(s, destination.Length), destination); break;
            case BaseDType.F16: F16.Dequantize(_f16.AsSpan(s, destination.Length), destination); break;
            case BaseDType.Int8: ExpandInt8(s, destination); break;
            default: ExpandNf4(s, destination); break;
        }
    }

    /// <summary>Decoding's product (m = 1): <c>y[r] = Σ_c W[r, c]·x[c]</c>, one expanded chunk at a time.</summary>
    public void MultiplyVector(ReadOnlySpan<float> x, Span<float> y)
    {
        CheckVectors(x.Length, y.Length, Columns, Rows, nameof(MultiplyVector));
        if (DType == BaseDType.Nf4 && Columns % Nf4.BlockSize == 0 && Avx512F.IsSupported)
        {
            MultiplyVectorNf4Avx512(x, y);
            return;
        }
        if (DType == BaseDType.Nf4 && Columns % Nf4.BlockSize == 0 && Nf4.FusedDotSupported)
        {
            // Rows start on block boundaries, so each row is whole blocks: dot the levels with x, scale once a block.
            int blocksPerRow = Columns / Nf4.BlockSize;
            for (int r = 0; r < Rows; r++)
            {
                float sum = 0f;
                for (int j = 0; j < blocksPerRow; j++)
                {
                    int b = r * blocksPerRow + j;
                    sum += BlockScale(b) * Nf4.BlockDot(_nf4.AsSpan(b * (Nf4.BlockSize / 2), Nf4.BlockSize / 2),
                        x.Slice(j * Nf4.BlockSize, Nf4.BlockSize));
                }
                y[r] = sum;
            }
            return;
        }
        Span<float> buffer = stackalloc float[Math.Min(Chunk, Math.Max(Columns, 1))];
        for (int r = 0; r < Rows; r++)
        {
            float sum = 0f;
            for (int c = 0; c < Columns; c += buffer.Length)
            {
                int len = Math.Min(buffer.Length, Columns - c);
                ExpandRange((long)r * Columns + c, buffer[..len]);
                sum += TensorPrimitives.Dot(buffer[..len], x.Slice(c, len));
            }
            y[r] = sum;
        }
    }

    [ThreadStatic] private static float[]? t_split;

    /// <summary>
    /// NF4 decoding's product on AVX-512, rows split over threads (each row is computed alone, so the bits do not
    /// depend on the thread count). Byte p of a row holds element 2p in its high nibble and 2p+1 in its low one, so x
    /// is split once into its even and odd elements; then sixteen bytes give sixteen high and sixteen low indices, one
    /// <c>vpermps</c> each turns them into levels (the 16 levels are one register), and the block's products are scaled
    /// once per block into a row accumulator, summed across lanes once per row. Through the AVX2 per-block dot
    /// (two 8-entry lookups and a select per 8 values, a horizontal sum per block, one thread) NF4 decoded GPT-2-small
    /// at 0.8× F32's speed.
    /// </summary>
    private void MultiplyVectorNf4Avx512(ReadOnlySpan<float> x, Span<float> y)
    {
        int half = Columns / 2;
        float[] split = t_split is { } t && t.Length >= Columns ? t : (t_split = new float[Columns]);
        for (int i = 0; i < half; i++)
        {
            split[i] = x[2 * i];
            split[half + i] = x[2 * i + 1];
        }
        fixed (byte* packed = _nf4)
        fixed (float* xs = split, py = y)
            ParallelRange.For(new Nf4GemvBody(this, packed, xs, xs + half, py), Rows, 1,
                Math.Max(1, 262_144 / Columns));
    }

    private readonly struct Nf4GemvBody(QuantizedMatrix m, byte* packed, float* even, float* odd, float* y) : IRangeBody
    {
        public void Run(int start, int end)
        {
            Vector512<float> levels = Vector512.Create(Nf4.Levels);
            Vector512<int> nibble = Vector512.Create(15);
            int blocksPerRow = m.Columns / Nf4.BlockSize, bytesPerBlock = Nf4.BlockSize / 2;
            for (int r = start; r < end; r++)
            {
                Vector512<float> acc = Vector512<float>.Zero;
                for (int j = 0; j < blocksPerRow; j++)
                {
                    int b = r * blocksPerRow + j;
                    byte* q = packed + (long)b * bytesPerBlock;
                    float* xe = even + j * bytesPerBlock, xo = odd + j * bytesPerBlock;
                    Vector512<int> v0 = Avx512F.ConvertToVector512Int32(Vector128.Load(q));
                    Vector512<int> v1 = Avx512F.ConvertToVector512Int32(Vector128.Load(q + 16));
                    Vector512<float> sum = Avx512F.PermuteVar16x32(levels, v0 >>> 4) * Vector512.Load(xe);
                    sum = Vector512.FusedMultiplyAdd(Avx512F.PermuteVar16x32(levels, v0 & nibble),
                        Vector512.Load(xo), sum);
                    sum = Vector512.FusedMultiplyAdd(Avx512F.PermuteVar16x32(levels, v1 >>> 4),
                        Vector512.Load(xe + 16), sum);
                    sum = Vector512.FusedMultiplyAdd(Avx512F.PermuteVar16x32(levels, v1 & nibble),
                        Vector512.Load(xo + 16), sum);
                    acc = Vector512.FusedMultiplyAdd(sum, Vector512.Create(m.BlockScale(b)), acc);
                }
                y[r] = Vector512.Sum(acc);
            }
        }
    }

    /// <summary>The input's gradient for one row of dY (m = 1): <c>dx[c] += Σ_r dy[r]·W[r, c]</c>.</summary>
    public void MultiplyVectorTransposedAccumulate(ReadOnlySpan<float> dy, Span<float> dx)
    {
        CheckVectors(dy.Length, dx.Length, Rows, Columns, nameof(MultiplyVectorTransposedAccumulate));
        Span<float> buffer = stackalloc float[Math.Min(Chunk, Math.Max(Columns, 1))];
        for (int r = 0; r < Rows; r++)
            for (int c = 0; c < Columns; c += buffer.Length)
            {
                int len = Math.Min(buffer.Length, Columns - c);
                ExpandRange((long)r * Columns + c, buffer[..len]);
                TensorPrimitives.MultiplyAdd(buffer[..len], dy[r], dx.Slice(c, len), dx.Slice(c, len));
            }
    }

    private void ExpandInt8(int start, Span<float> destination)
    {
        int d = 0;
        while (d < destination.Length)
        {
            int at = start + d, row = at / Columns;
            int len = Math.Min(destination.Length - d, (row + 1) * Columns - at);
            Int8Rowwise.DequantizeRow(_int8.AsSpan(at, len), _rowScales![row], destination.Slice(d, len));
            d += len;
        }
    }

    // Each block's scale is expanded once and its body decoded 32 values (16 bytes) at a time on AVX-512, in pairs
    // otherwise; every value is Levels[index]·scale, one rounding, as Nf4.Dequantize gives. The GEMM's packing
    // (QuantizedPanels) calls this once per 32- or 256-value run, so it keeps no buffer and no per-call set-up.
    private void ExpandNf4(int start, Span<float> destination)
    {
        ReadOnlySpan<float> levels = Nf4.Levels;
        fixed (byte* q = _nf4)
        fixed (float* dst = destination)
        {
            int at = start, d = 0, length = destination.Length;
            while (d < length)
            {
                int block = at / Nf4.BlockSize;
                float scale = BlockScale(block);
                int stop = (int)Math.Min(length, d + ((long)(block + 1) * Nf4.BlockSize - at));
                if ((at & 1) == 1) { dst[d++] = levels[q[at >> 1] & 15] * scale; at++; }
                if (Avx512F.IsSupported)
                    for (; d + 32 <= stop; d += 32, at += 32) Nf4Decode32(q + (at >> 1), scale, dst + d);
                for (; d + 1 < stop; d += 2, at += 2)
                {
                    byte pair = q[at >> 1];
                    dst[d] = levels[pair >> 4] * scale;
                    dst[d + 1] = levels[pair & 15] * scale;
                }
                if (d < stop) { dst[d++] = levels[q[at >> 1] >> 4] * scale; at++; }
            }
        }
    }

    private static readonly Vector512<int> EvenFirst =
        Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    private static readonly Vector512<int> EvenSecond = EvenFirst + Vector512.Create(8);

    // 32 values from 16 bytes: the high nibbles (even elements) and the low ones (odd) become levels by one vpermps
    // each (the 16 levels are one register), and two two-source permutes interleave them back into element order.
    private static void Nf4Decode32(byte* q, float scale, float* dst)
    {
        Vector512<float> levels = Vector512.Create(Nf4.Levels);
        Vector512<int> v = Avx512F.ConvertToVector512Int32(Vector128.Load(q));
        Vector512<float> high = Avx512F.PermuteVar16x32(levels, v >>> 4);
        Vector512<float> low = Avx512F.PermuteVar16x32(levels, v & Vector512.Create(15));
        (Avx512F.PermuteVar16x32x2(high, EvenFirst, low) * scale).Store(dst);
        (Avx512F.PermuteVar16x32x2(high, EvenSecond, low) * scale).Store(dst + 16);
    }

    // NF4 block b's absmax, stored double-quantised (8-bit code, one absmax per 256 blocks, one offset).
    private float BlockScale(int b) =>
        DynamicQuant8.Value(_absmaxCodes![b], _absmax2![b / DynamicQuant8.BlockSize], _absmaxOffset);

    private static void CheckVectors(int input, int output, int inputNeeded, int outputNeeded, string what)
    {
        if (input != inputNeeded || output < outputNeeded)
            throw new ArgumentException($"QuantizedMatrix.{what}: input has {input} elements (needs {inputNeeded}), "
                + $"output {output} (needs {outputNeeded}).");
    }
}
