using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoRA.Managed.Kernels;

/// <summary>
/// One row of C times a row-major op(B) = B, <c>c = alpha·a·B + beta·c</c> (m = 1): a decoded token through GPT-2's
/// Conv1D layers (weights stored in × out), the product decoding repeats for every weight, whose cost is reading the
/// weight once. <see cref="NarrowGemm"/> ran it as a tile of four rows with one valid (four FMAs per element of B, the
/// other three on duplicated rows) and one 32-column block at a time down all of B; here row p of B, scaled by a[p],
/// is added to a row of sums, four rows of B per pass over the sums, so B is read row by row, once.
/// </summary>
/// <remarks>
/// Each element of c is summed as the packed path sums it (FMAs over p in increasing order from zero within each block
/// of <see cref="Gemm.KC"/>, then <c>c ← beta·c + alpha·sum</c> with beta = 1 after the first block), so the bits are
/// <see cref="Gemm"/>'s for every shape (<c>GemmBitsTests</c>; <see cref="GemmReference"/> is the twin). For
/// op(B) = Wᵀ (a <c>Linear</c>'s weight) the same order needs W's columns; a kernel that transposed 16 × 16 blocks in
/// registers and kept the sums in four vectors ran at 11–12 GB/s against NarrowGemm's 13–14 (docs/07, "Decoding on
/// both cores"), so that case stays in NarrowGemm.
/// </remarks>
[SkipLocalsInit]
internal static unsafe class GemvKernel
{
    private const int V = 16;

    // The row of n sums, per thread, grown once; whole vectors, so the final store may read its last one whole.
    [ThreadStatic] private static float[]? t_sums;

    /// <summary>Whether the product runs here: one row, op(B) not transposed, AVX-512 (the masked loads and
    /// stores).</summary>
    public static bool Applies(int m, bool transB) => m == 1 && !transB && !Disabled && RowMask.IsSupported;

    /// <summary>For benchmarks and tests: one-row products through <see cref="NarrowGemm"/>'s tiles, as
    /// before.</summary>
    internal static bool Disabled;

    /// <summary><c>c[j] = alpha·Σₚ a[p·csA]·b[p·ldb + j] + beta·c[j]</c> for j &lt; n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Multiply(int n, int k, float alpha, float* a, long csA, float* b, int ldb, float beta, float* c)
    {
        for (int p0 = 0; p0 < k; p0 += Gemm.KC)
            Rows(n, Math.Min(Gemm.KC, k - p0), alpha, a + p0 * csA, csA, b + (long)p0 * ldb, ldb,
                p0 == 0 ? beta : 1f, c);
    }

    // op(B) = B: sums[j] accumulates a[p]·B[p, j] over the block's p in order, four p per pass over the row of sums.
    // Every loop here is compiled fully optimised at once, as NarrowGemm's: called a few hundred times per token, at
    // tier 0 they would stay slow for seconds.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows(int n, int kc, float alpha, float* a, long csA, float* b, int ldb, float beta, float* c)
    {
        int padded = (n + V - 1) / V * V;
        float[] buffer = t_sums is { } s && s.Length >= padded ? s
            : t_sums = new float[Math.Max(padded, Math.Max(1024, 2 * (t_sums?.Length ?? 0)))];
        fixed (float* sums = buffer)
        {
            new Span<float>(sums, n).Clear();
            int p = 0;
            for (; p + 4 <= kc; p += 4)
            {
                var x0 = Vector512.Create(a[p * csA]); var x1 = Vector512.Create(a[(p + 1) * csA]);
                var x2 = Vector512.Create(a[(p + 2) * csA]); var x3 = Vector512.Create(a[(p + 3) * csA]);
                float* r0 = b + (long)p * ldb, r1 = r0 + ldb, r2 = r1 + ldb, r3 = r2 + ldb;
                int j = 0;
                for (; j + V <= n; j += V)
                {
                    var acc = Vector512.Load(sums + j);
                    acc = Vector512.FusedMultiplyAdd(x0, Vector512.Load(r0 + j), acc);
                    acc = Vector512.FusedMultiplyAdd(x1, Vector512.Load(r1 + j), acc);
                    acc = Vector512.FusedMultiplyAdd(x2, Vector512.Load(r2 + j), acc);
                    acc = Vector512.FusedMultiplyAdd(x3, Vector512.Load(r3 + j), acc);
                    acc.Store(sums + j);
                }
                if (j == n) continue;
                // B's last vector of a row ends at column n: masked loads (masked loads throughout were a quarter
                // slower). The sums are padded to whole vectors; their lanes past n are never stored to c.
                var mask = RowMask.Mask(j, n);
                var last = Vector512.Load(sums + j);
                last = Vector512.FusedMultiplyAdd(x0, Avx512F.MaskLoad(r0 + j, mask, default), last);
                last = Vector512.FusedMultiplyAdd(x1, Avx512F.MaskLoad(r1 + j, mask, default), last);
                last = Vector512.FusedMultiplyAdd(x2, Avx512F.MaskLoad(r2 + j, mask, default), last);
                last = Vector512.FusedMultiplyAdd(x3, Avx512F.MaskLoad(r3 + j, mask, default), last);
                last.Store(sums + j);
            }
            for (; p < kc; p++)
            {
                var x = Vector512.Create(a[p * csA]);
                float* r = b + (long)p * ldb;
                for (int j = 0; j < n; j += V)
                    Vector512.FusedMultiplyAdd(x, Avx512F.MaskLoad(r + j, RowMask.Mask(j, n), default),
                        Vector512.Load(sums + j)).Store(sums + j);
            }
            // c ← alpha·sum (+ beta·c): the packed path's two roundings, its narrow tiles' masked store.
            NarrowKernels.StoreEdge(sums, padded, 1, c, padded, n, alpha, beta);
        }
    }
}
