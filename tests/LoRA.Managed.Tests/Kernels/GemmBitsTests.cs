using System.Runtime.Intrinsics;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Kernels;

/// <summary>
/// Bit-for-bit equality of every path <see cref="Gemm.Multiply"/> can take (the narrow direct path, the packed
/// path, one or two threads) with the packed 8×32 path on one thread, and of the AVX2 6×16 and scalar tiles with it:
/// each element of C is one FMA chain over p in increasing order, C updated after every block of <see cref="Gemm.KC"/>,
/// whatever the tile. The trained models are bitwise the same on every path because of this.
/// </summary>
public class GemmBitsTests
{
    // Awkward sizes: 1, tails of 4, 8, 16 and 32, the 12-row tile's range, the MLP's 10, 64 and 256.
    private static readonly int[] Rows = { 1, 7, 9, 10, 12, 13, 16, 63, 64, 65, 129 };
    private static readonly int[] Columns = { 1, 7, 10, 16, 17, 33, 63, 65, 129, 256 };
    // 257 and 513 cross one and two KC blocks, where beta applies to the first only.
    private static readonly int[] Depths = { 1, 7, 10, 16, 17, 64, 257, 513 };

    [TestCase(false, false), TestCase(false, true), TestCase(true, false), TestCase(true, true)]
    public void EveryPathGivesThePacked8x32Bits(bool ta, bool tb)
    {
        Assume.That(Vector512.IsHardwareAccelerated, "the reference here is the AVX-512 packed path");
        int saved = ComputeThreads.Max;
        try
        {
            foreach (int m in Rows)
                foreach (int n in Columns)
                    foreach (int k in Depths)
                    {
                        if ((long)m * n * k > 1 << 22) continue;
                        foreach (int threads in new[] { 1, 2 })
                        {
                            ComputeThreads.Max = threads;
                            Compare(MicroKernelKind.Vector512x8x32, m, n, k, ta, tb, null, $"{threads} thread(s)");
                        }
                    }
        }
        finally { ComputeThreads.Max = saved; }
    }

    /// <summary>
    /// The products of the lm-demo GPT step (2048 tokens, width 64, MLP 256, vocab 96) and of the blog MLP (batch 64),
    /// which read A in place (<see cref="DirectGemm"/>: tile by tile above 96 rows, panel by panel at or under, op(B)
    /// in place or packed), and shapes one off their edges, on one thread and two: the packed path's bits.
    /// </summary>
    [TestCase(2048, 64, 64, false, true), TestCase(2048, 64, 64, false, false), TestCase(64, 64, 2048, true, false),
     TestCase(2048, 256, 64, false, true), TestCase(2048, 64, 256, false, false), TestCase(256, 64, 2048, true, false),
     TestCase(64, 256, 2048, true, false), TestCase(2048, 96, 64, false, true), TestCase(96, 64, 2048, true, false),
     TestCase(64, 512, 784, false, true), TestCase(512, 784, 64, true, false), TestCase(64, 784, 512, false, false),
     TestCase(97, 257, 300, false, false), TestCase(95, 300, 513, true, true), TestCase(129, 255, 65, true, true)]
    public void TransformerAndMlpShapesGiveThePacked8x32Bits(int m, int n, int k, bool ta, bool tb)
    {
        Assume.That(Vector512.IsHardwareAccelerated, "the reference here is the AVX-512 packed path");
        ComparePacked8x32OnThreads(m, n, k, ta, tb, 1, 2);
    }

    /// <summary>
    /// C of 256 rows or more that is more than twice as wide as high is split by columns (a language model's
    /// projections over a few hundred tokens), narrower or taller C by rows: the parts' shapes change, the bits do not,
    /// on two and three threads.
    /// </summary>
    [TestCase(256, 1536, 576, false, true), TestCase(256, 1536, 576, false, false), TestCase(257, 1031, 65, true, true),
     TestCase(300, 601, 129, false, false), TestCase(300, 600, 129, false, true)]
    public void WideProductsSplitByColumnsWithThePacked8x32Bits(int m, int n, int k, bool ta, bool tb)
    {
        Assume.That(Vector512.IsHardwareAccelerated, "the reference here is the AVX-512 packed path");
        Assert.That(Gemm.SplitsByColumns(m, n, 2), Is.EqualTo(n > 2 * m), $"{m}×{n} on two threads");
        ComparePacked8x32OnThreads(m, n, k, ta, tb, 2, 3);
    }

    /// <summary>
    /// Narrow products with many columns are split over threads by blocks of 32 columns, each block a narrow product
    /// of its own: a decoded token's projections (x·Wᵀ and GPT-2's Conv1D x·W) and head, LoRA's factor gradient over
    /// 256 tokens, depths past one block of KC, 33 columns (one full block and one of one column): the packed path's
    /// bits on two and three threads.
    /// </summary>
    [TestCase(1, 576, 576, false, true), TestCase(1, 1536, 576, false, true), TestCase(1, 576, 1536, false, true),
     TestCase(1, 2304, 768, false, false), TestCase(1, 49152, 576, false, true), TestCase(8, 576, 256, true, false),
     TestCase(3, 65, 4000, false, true), TestCase(16, 33, 4096, true, true), TestCase(5, 1000, 300, true, false),
     TestCase(1, 1536, 576, false, false), TestCase(1, 3000, 1000, true, false)]
    public void NarrowProductsSplitByColumnsWithThePacked8x32Bits(int m, int n, int k, bool ta, bool tb)
    {
        Assume.That(Vector512.IsHardwareAccelerated, "the reference here is the AVX-512 packed path");
        Assert.That(NarrowGemm.Applies(m, n, k), Is.True, "a narrow product");
        Assert.That(Gemm.NarrowSplits(n, 2), Is.True, "split on two threads");
        ComparePacked8x32OnThreads(m, n, k, ta, tb, 2, 3);
    }

    [TestCase(16, 2, false), TestCase(17, 2, false), TestCase(32, 2, false), TestCase(33, 2, true),
     TestCase(576, 1, false), TestCase(576, 2, true), TestCase(10, 2, false)]
    public void NarrowSplitNeedsTwoBlocksOfColumnsAndTwoThreads(int n, int threads, bool splits) =>
        Assert.That(Gemm.NarrowSplits(n, threads), Is.EqualTo(splits));

    // Compare against the packed 8×32 path on one thread with each of the thread counts.
    private static void ComparePacked8x32OnThreads(int m, int n, int k, bool ta, bool tb, params int[] threadCounts)
    {
        int saved = ComputeThreads.Max;
        try
        {
            foreach (int threads in threadCounts)
            {
                ComputeThreads.Max = threads;
                Compare(MicroKernelKind.Vector512x8x32, m, n, k, ta, tb, null, $"{threads} thread(s)");
            }
        }
        finally { ComputeThreads.Max = saved; }
    }

    /// <summary>Which way <see cref="Gemm"/> splits the products of the blog MLP and of a Llama over 256 tokens: on
    /// two threads, and on sixteen, where 256×576 has too few 32-column tiles (18) for columns.</summary>
    [TestCase(64, 512, 2, true), TestCase(64, 784, 2, true), TestCase(512, 784, 2, false),
     TestCase(256, 512, 2, false), TestCase(256, 1536, 2, true), TestCase(256, 576, 2, true),
     TestCase(512, 1024, 2, false), TestCase(1024, 128, 2, false), TestCase(256, 576, 16, false),
     TestCase(256, 1536, 16, true)]
    public void SplitDirection(int m, int n, int threads, bool byColumns) =>
        Assert.That(Gemm.SplitsByColumns(m, n, threads), Is.EqualTo(byColumns));

    [TestCase("Vector256x6x16", false, false), TestCase("Vector256x6x16", false, true),
        TestCase("Vector256x6x16", true, false),
     TestCase("Vector256x6x16", true, true), TestCase("Scalar", false, false), TestCase("Scalar", true, true)]
    public void TheOtherTilesGiveThePacked8x32Bits(string kindName, bool ta, bool tb)
    {
        var kind = Enum.Parse<MicroKernelKind>(kindName); // the enum is internal, so cases carry its name
        Assume.That(Vector512.IsHardwareAccelerated, "the reference here is the AVX-512 packed path");
        foreach (int m in new[] { 1, 7, 10, 63, 65 })
            foreach (int n in new[] { 1, 10, 17, 65 })
                foreach (int k in new[] { 1, 10, 257, 513 })
                    Compare(MicroKernelKind.Vector512x8x32, m, n, k, ta, tb, kind, $"{kind} against 8×32");
    }

    /// <summary>
    /// Shallow products (k ≤ 10) split their columns where C's rows reach a 64-byte boundary when every row is
    /// aligned alike (ldc a multiple of 16): C is placed at each float offset from a boundary, and the bits must
    /// still be those of the packed path.
    /// </summary>
    [TestCase(false, false), TestCase(true, true)]
    public unsafe void ShallowProductsGiveThePacked8x32BitsAtEveryAlignmentOfC(bool ta, bool tb)
    {
        Assume.That(Vector512.IsHardwareAccelerated, "the reference here is the AVX-512 packed path");
        foreach (int m in new[] { 1, 7, 13, 63, 64 })
            foreach (int n in new[] { 17, 40, 100, 256 })
                foreach (int k in new[] { 1, 7, 10 })
                {
                    var g = new TorchGenerator((ulong)(m * 31 + n * 7 + k));
                    int lda = ta ? m : k, ldb = tb ? k : n, ldc = (n + 15) / 16 * 16;
                    float[] a = GemmTests.Rand(g, m * k), b = GemmTests.Rand(g, k * n),
                        c0 = GemmTests.Rand(g, m * ldc + 16);
                    for (int offset = 0; offset < 16; offset++)
                        foreach (float beta in new[] { 0f, 0.3f })
                        {
                            // Pinned arrays are not moved, so the offset sets C's alignment for the whole call.
                            float[] actual = GC.AllocateArray<float>(c0.Length + 32, pinned: true);
                            float[] expected = (float[])actual.Clone();
                            int shift;
                            fixed (float* pc = actual) shift = (int)((64 - ((nint)pc & 63)) & 63) / 4 + offset;
                            c0.CopyTo(actual, shift);
                            c0.CopyTo(expected, shift);
                            fixed (float* pa = a, pb = b, pe = expected)
                                Gemm.Serial(MicroKernelKind.Vector512x8x32, ta, tb, m, n, k, 0.75f, pa, lda, pb, ldb,
                                    beta, pe + shift, ldc);
                            Gemm.Multiply(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, beta, actual.AsSpan(shift), ldc);
                            for (int i = 0; i < actual.Length; i++)
                                if (BitConverter.SingleToInt32Bits(actual[i])
                                    != BitConverter.SingleToInt32Bits(expected[i]))
                                    Assert.Fail($"{m}×{k}·{k}×{n} {(ta ? 'T' : 'N')}{(tb ? 'T' : 'N')} C {offset} " +
                                        $"floats past a boundary, beta {beta}: " +
                                        $"element {i - shift} = {actual[i]:R}, packed path {expected[i]:R}");
                        }
                }
    }

    /// <summary>
    /// Ten rows of a transposed A (the classifier's weight gradient, (64×10)ᵀ·64×256) are broadcast in place, not
    /// packed, and whole 10×32 tiles are stored straight from the registers: A tight (lda = 10), and A, B and C
    /// placed at offsets from a 64-byte boundary (0 to 15 floats, every third),
    /// alpha 1 with beta 0 (the call autograd makes) and alpha 0.75 with beta 0 (C full of NaN), 1 and 0.3; the bits
    /// must be those of the packed path and C's padding untouched.
    /// </summary>
    [TestCase(false), TestCase(true)]
    public unsafe void TenRowsOfATransposedAGiveThePacked8x32BitsAtEveryAlignment(bool tb)
    {
        Assume.That(Vector512.IsHardwareAccelerated, "the reference here is the AVX-512 packed path");
        const int m = 10;
        foreach (int n in new[] { 17, 32, 33, 64, 250, 256 })
            foreach (int k in new[] { 1, 2, 63, 64, 257 })
            {
                var g = new TorchGenerator((ulong)(n * 131 + k * 17 + (tb ? 1 : 0)));
                int lda = m, ldb = tb ? k : n, ldc = n + (n % 16 == 0 ? 0 : 3);
                float[] a0 = GemmTests.Rand(g, k * lda), b0 = GemmTests.Rand(g, (tb ? n : k) * ldb),
                    c0 = GemmTests.Rand(g, m * ldc);
                for (int offset = 0; offset < 16; offset += 3)
                    foreach (var (alpha, beta) in new[] { (1f, 0f), (0.75f, 0f), (0.75f, 1f), (0.75f, 0.3f) })
                    {
                        // Pinned arrays are not moved, so each offset sets its operand's alignment for the whole call.
                        float[] a = GC.AllocateArray<float>(a0.Length + 32, pinned: true),
                            b = GC.AllocateArray<float>(b0.Length + 32, pinned: true);
                        float[] actual = GC.AllocateArray<float>(c0.Length + 32, pinned: true);
                        int sa, sb, sc;
                        fixed (float* pa = a, pb = b, pc = actual)
                        {
                            sa = (int)((64 - ((nint)pa & 63)) & 63) / 4 + offset;
                            sb = (int)((64 - ((nint)pb & 63)) & 63) / 4 + offset;
                            sc = (int)((64 - ((nint)pc & 63)) & 63) / 4 + offset;
                        }
                        a0.CopyTo(a, sa);
                        b0.CopyTo(b, sb);
                        c0.CopyTo(actual, sc);
                        if (beta == 0f)
                            for (int i = 0; i < m; i++)
                                for (int j = 0; j < n; j++) actual[sc + i * ldc + j] = float.NaN;
                        float[] expected = (float[])actual.Clone();
                        fixed (float* pa = a, pb = b, pe = expected)
                            Gemm.Serial(MicroKernelKind.Vector512x8x32, true, tb, m, n, k, alpha, pa + sa, lda, pb + sb,
                                ldb, beta, pe + sc, ldc);
                        Gemm.Multiply(true, tb, m, n, k, alpha, a.AsSpan(sa, a0.Length), lda, b.AsSpan(sb, b0.Length),
                            ldb, beta, actual.AsSpan(sc, c0.Length), ldc);
                        for (int i = 0; i < actual.Length; i++)
                            if (BitConverter.SingleToInt32Bits(actual[i])
                                != BitConverter.SingleToInt32Bits(expected[i]))
                                Assert.Fail($"(k×10)ᵀ·{k}×{n} T{(tb ? 'T' : 'N')} operands {offset} floats past a " +
                                    $"boundary, alpha {alpha} beta {beta}: " +
                                    $"element {i - sc} = {actual[i]:R}, packed path {expected[i]:R}");
                    }
            }
    }

    /// <summary>
    /// The layer-3 products of the MLP and the shapes next to them, against the naive twin within the rounding
    /// a sum of k products can gather (the twin adds in another order without fused multiply-adds).
    /// </summary>
    [TestCase(64, 10, 256, false, true), TestCase(10, 256, 64, true, false), TestCase(64, 256, 10, false, false),
     TestCase(63, 9, 257, true, true), TestCase(11, 130, 513, false, false), TestCase(65, 257, 16, true, false)]
    public void MlpLayer3ShapesMatchTheReference(int m, int n, int k, bool ta, bool tb)
    {
        var g = new TorchGenerator((ulong)(m * 3 + n * 5 + k));
        foreach (var (alpha, beta) in new[] { (1f, 0f), (1f, 1f), (-0.75f, 0.5f) })
        {
            float[] a = GemmTests.Rand(g, m * k), b = GemmTests.Rand(g, k * n), c0 = GemmTests.Rand(g, m * n);
            float[] expected = (float[])c0.Clone(), actual = (float[])c0.Clone();
            int lda = ta ? m : k, ldb = tb ? k : n;
            GemmReference.Multiply(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, expected, n);
            Gemm.Multiply(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, actual, n);
            float tol = 4e-7f * k * 4 + 1e-6f;
            for (int i = 0; i < expected.Length; i++)
                if (Math.Abs(actual[i] - expected[i]) > tol)
                    Assert.Fail($"alpha {alpha} beta {beta}: C[{i / n},{i % n}] = {actual[i]}, " +
                        $"reference {expected[i]}");
        }
    }

    /// <summary>
    /// Runs <see cref="Gemm.Multiply"/> (or, given <paramref name="kind"/>, the packed path with that tile) and the
    /// <paramref name="reference"/> packed path (or, when null, <see cref="Gemm.Multiply"/> on one thread) on the
    /// same operands, with leading dimensions wider than the rows, for beta 0 (C holds NaN, which must not leak), 1
    /// and 0.3 and alpha 0.75, and asserts the same bits and untouched padding. With <paramref name="specials"/> a
    /// few NaN, ±∞ and −0 sit among the operands.
    /// </summary>
    internal static unsafe void Compare(MicroKernelKind? reference, int m, int n, int k, bool ta, bool tb,
        MicroKernelKind? kind, string what, bool specials = false)
    {
        var g = new TorchGenerator((ulong)(m * 7919 + n * 104729 + k * 13 + (ta ? 1 : 0) + (tb ? 2 : 0)));
        int lda = (ta ? m : k) + 1, ldb = (tb ? k : n) + 3, ldc = n + 2;
        float[] a = GemmTests.Rand(g, (ta ? k : m) * lda), b = GemmTests.Rand(g, (tb ? n : k) * ldb),
            c0 = GemmTests.Rand(g, m * ldc);
        float[] special = specials ? [float.NaN, float.PositiveInfinity, float.NegativeInfinity, -0f] : [];
        for (int i = 0; i < special.Length; i++)
        {
            a[(i * 7919 + 13) % a.Length] = special[i];
            b[(i * 104729 + 29) % b.Length] = special[i];
        }
        // 0.3 is not a power of two: beta·C rounds, so an update written as a separate multiply and add would show.
        foreach (float beta in new[] { 0f, 1f, 0.3f })
        {
            float[] actual = (float[])c0.Clone(), expected = (float[])c0.Clone();
            if (beta == 0f)
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++) { actual[i * ldc + j] = float.NaN; expected[i * ldc + j] = float.NaN; }
            fixed (float* pa = a, pb = b, pe = expected, pc = actual)
            {
                if (reference is { } packed)
                    Gemm.Serial(packed, ta, tb, m, n, k, 0.75f, pa, lda, pb, ldb, beta, pe, ldc);
                else
                    using (ComputeThreads.Use(1))
                        Gemm.Multiply(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, beta, expected, ldc);
                if (kind is { } tile) Gemm.Serial(tile, ta, tb, m, n, k, 0.75f, pa, lda, pb, ldb, beta, pc, ldc);
                else Gemm.Multiply(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, beta, actual, ldc);
            }
            for (int i = 0; i < actual.Length; i++)
                if (BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i]))
                    Assert.Fail($"{what}: {m}×{k}·{k}×{n} {(ta ? 'T' : 'N')}{(tb ? 'T' : 'N')} beta {beta}: " +
                        $"C[{i / ldc},{i % ldc}] = {actual[i]:R}, " +
                        $"{(reference is null ? "one thread" : "packed path")} {expected[i]:R}");
        }
    }
}
