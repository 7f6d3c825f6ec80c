using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoRA.Managed.Kernels;

/// <summary>
/// The path of <see cref="Gemm"/> for products with at most <see cref="MaxColumns"/> columns: A is read where it
/// lies instead of being packed, and op(B) is packed once per block of <see cref="Gemm.KC"/> (or read in place).
/// The transformer's linear layers (2048 tokens × width 64, MLP 256) are such products.
/// </summary>
/// <remarks>
/// <para>Why: packing copies each element of A once per block of <see cref="Gemm.KC"/>, and that copy pays off over
/// the ⌈n/32⌉ panels of op(B) that reuse it. With 64 columns there are two, and packing A took about a sixth of the
/// product (docs/07-performance.md, "Decisions in the kernels"). Unpacked, each step of p broadcasts the eight rows'
/// values straight from A (a row stride and a column stride cover every transpose, as in <see cref="NarrowGemm"/>):
/// the eight rows of a tile stay in L1 while the tile sweeps across the ≤ 256 KB packed block of op(B) in L2.</para>
/// <para>op(B) is read in place, unpacked, when its rows are contiguous (not transposed) and the product has at most
/// <see cref="InPlaceRows"/> rows: few tiles reuse each element of B there, so packing it was the larger cost; with
/// more rows the strided rows of B conflicted in L1 and the packed block was faster.</para>
/// <para>Every element of C is the <see cref="NarrowKernels.Rows8x32"/> chain: FMAs over p in increasing order from
/// zero, C written as <c>alpha·acc</c> or <c>fma(C, beta, alpha·acc)</c> after each block of <see cref="Gemm.KC"/>,
/// beta on the first block and 1 after: the packed path's bits, for any split of rows or columns.</para>
/// </remarks>
[SkipLocalsInit]
internal static unsafe class DirectGemm
{
    /// <summary>Widest op(B) this path takes: eight 32-column panels per tile of A.</summary>
    public const int MaxColumns = 256;

    /// <summary>Most rows for which op(B) is read in place rather than packed.</summary>
    public const int InPlaceRows = 96;

    private const int NR = 2 * NarrowKernels.V;

    /// <summary>True when a product of this shape takes this path (on AVX-512, with at most
    /// <see cref="MaxColumns"/> columns).</summary>
    public static bool Applies(int m, int n) =>
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported && n <= MaxColumns && m > 0;

    /// <summary>Row-major <c>C = alpha·op(A)·op(B) + beta·C</c> on one thread, for a shape where
    /// <see cref="Applies"/> holds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Multiply(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        long rsA = transA ? 1 : lda, csA = transA ? lda : 1;
        // Full 32-column panels of a row-major op(B) read in place; the rest (a tail, or all of a transposed B) packed.
        int inPlace = !transB && m <= InPlaceRows ? n / NR * NR : 0;
        fixed (float* unaligned = Gemm.PackBufferB())
        {
            float* packed = Gemm.Align64(unaligned);
            for (int pc = 0; pc < k; pc += Gemm.KC)
            {
                int kc = Math.Min(Gemm.KC, k - pc);
                float betaEff = pc == 0 ? beta : 1f;
                if (inPlace < n) Packing.PackB(transB, b, ldb, pc, inPlace, kc, n - inPlace, NR, packed);
                float* bBlock = b + (long)pc * ldb;
                for (int ir = 0; ir < m; ir += 8)
                {
                    int rows = Math.Min(8, m - ir);
                    float* ai = a + ir * rsA + pc * csA, ci = c + (long)ir * ldc;
                    for (int jr = 0; jr < n; jr += NR)
                    {
                        int w = Math.Min(NR, n - jr);
                        if (jr < inPlace)
                            NarrowKernels.Rows8x32(kc, alpha, ai, rsA, csA, bBlock + jr, ldb, betaEff, ci + jr, ldc,
                                rows, w);
                        else
                            NarrowKernels.Rows8x32(kc, alpha, ai, rsA, csA, packed + (jr - inPlace) * kc, NR, betaEff,
                                ci + jr, ldc, rows, w);
                    }
                }
            }
        }
    }
}
