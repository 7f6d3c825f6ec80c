using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoRA.Managed.Kernels;

/// <summary>
/// The path of <see cref="Gemm"/> that reads A where it lies instead of packing it: products with at most
/// <see cref="MaxColumns"/> columns (the transformer's linear layers: 2048 tokens × width 64, MLP 256) or at most
/// <see cref="FewRows"/> rows (the blog MLP's batch of 64).
/// </summary>
/// <remarks>
/// <para>Why: packing copies each element of A once per block of <see cref="Gemm.KC"/>, a copy that pays off over the
/// ⌈n/32⌉ panels of op(B) that reuse it. With 64 columns there are two: 2048×64·64×64 ran at 182–190 GFLOP/s packed
/// and 219–228 unpacked on one thread (the benchmarks' <c>--gpt-gemm</c>, which alternates the two paths). Unpacked,
/// each step of p broadcasts a tile's eight values straight from A (a row stride and a column stride cover both
/// transposes, as in <see cref="NarrowGemm"/>).</para>
/// <para>Two loop orders, by the number of rows. With more than <see cref="FewRows"/>, each tile of eight rows (in
/// L1) sweeps across a block of op(B) packed once per block of <see cref="Gemm.KC"/> (at most 256 KB, in L2). With
/// fewer, each 32-column panel of op(B) (in L1) meets every row of A (at most 96 KB, in L2): the panel is packed just
/// before its use, or, when op(B)'s rows are contiguous (B not transposed) and the panel is full, read in place,
/// unpacked: few tiles reuse each element of B there, so its copy cost more than the strided reads (unless the rows
/// are a multiple of 4 KB apart).</para>
/// <para>Every element of C is the <see cref="NarrowKernels.Rows8x32"/> chain: FMAs over p in increasing order from
/// zero, C written as <c>alpha·acc</c> or <c>fma(C, beta, alpha·acc)</c> after each block of <see cref="Gemm.KC"/>,
/// beta on the first block and 1 after: the packed path's bits, for any split of rows or columns.</para>
/// </remarks>
[SkipLocalsInit]
internal static unsafe class DirectGemm
{
    /// <summary>Widest op(B) this path takes with many rows: eight 32-column panels per tile of A, and a packed block
    /// of op(B) that fits L2.</summary>
    public const int MaxColumns = 256;

    /// <summary>Rows at or under which any product takes this path, panel by panel.</summary>
    public const int FewRows = 96;

    private const int NR = 2 * NarrowKernels.V;

    /// <summary>True when a product of this shape takes this path (on AVX-512).</summary>
    public static bool Applies(int m, int n) =>
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported && (n <= MaxColumns || m <= FewRows);

    /// <summary>Row-major <c>C = alpha·op(A)·op(B) + beta·C</c> on one thread, for a shape where
    /// <see cref="Applies"/> holds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Multiply(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        long rsA = transA ? 1 : lda, csA = transA ? lda : 1;
        fixed (float* unaligned = Gemm.PackBufferB())
        {
            float* packed = Gemm.Align64(unaligned);
            for (int pc = 0; pc < k; pc += Gemm.KC)
            {
                int kc = Math.Min(Gemm.KC, k - pc);
                float betaEff = pc == 0 ? beta : 1f;
                float* ap = a + pc * csA;
                if (m <= FewRows) PanelByPanel(transB, m, n, kc, pc, alpha, ap, rsA, csA, b, ldb, betaEff, c, ldc,
                    packed);
                else TileByTile(transB, m, n, kc, pc, alpha, ap, rsA, csA, b, ldb, betaEff, c, ldc, packed);
            }
        }
    }

    /// <summary>One block of the shared dimension with few rows: each panel of op(B), packed or in place, meets every
    /// tile of A.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PanelByPanel(bool transB, int m, int n, int kc, int pc, float alpha, float* a, long rsA,
        long csA, float* b, int ldb, float beta, float* c, int ldc, float* packed)
    {
        // Rows of B 4 KB apart (ldb a multiple of 1024) all fall in the same sets of L1 and evict each other: read in
        // place, 64×256·256×1024 was 6–10 % slower than packed, where 64×256·256×784 was 9 % faster.
        bool inPlace = !transB && (ldb & 1023) != 0;
        for (int jr = 0; jr < n; jr += NR)
        {
            int w = Math.Min(NR, n - jr);
            float* panel = b + (long)pc * ldb + jr;
            long rsB = ldb;
            if (!inPlace || w < NR)
            {
                Packing.PackB(transB, b, ldb, pc, jr, kc, w, NR, packed);
                panel = packed;
                rsB = NR;
            }
            for (int ir = 0; ir < m; ir += 8)
                NarrowKernels.Rows8x32(kc, alpha, a + ir * rsA, rsA, csA, panel, rsB, beta, c + (long)ir * ldc + jr,
                    ldc, Math.Min(8, m - ir), w);
        }
    }

    /// <summary>One block of the shared dimension with many rows: op(B)'s block is packed once, and each tile of eight
    /// rows sweeps across it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileByTile(bool transB, int m, int n, int kc, int pc, float alpha, float* a, long rsA,
        long csA, float* b, int ldb, float beta, float* c, int ldc, float* packed)
    {
        Packing.PackB(transB, b, ldb, pc, 0, kc, n, NR, packed);
        for (int ir = 0; ir < m; ir += 8)
        {
            int rows = Math.Min(8, m - ir);
            float* ai = a + ir * rsA, ci = c + (long)ir * ldc;
            for (int jr = 0; jr < n; jr += NR)
                NarrowKernels.Rows8x32(kc, alpha, ai, rsA, csA, packed + jr * kc, NR, beta, ci + jr, ldc, rows,
                    Math.Min(NR, n - jr));
        }
    }
}
