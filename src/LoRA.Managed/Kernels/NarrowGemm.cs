using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LoRA.Managed.Kernels;

/// <summary>
/// The direct path of <see cref="Gemm"/> for products with at most 16 columns (or, by transposing the
/// whole product, at most 16 rows): the classifier's last layer (N = 10) and its gradient (M = 10), and
/// LoRA's rank-r factors. The packed path pads such a product to 32-column tiles and packs all of A for a
/// few columns of output; here op(B) is copied once into a k×16 zero-padded strip and each row of C is a
/// single <see cref="Vector512{T}"/> accumulator, fed straight from A's rows without packing.
/// </summary>
/// <remarks>
/// Every operand is addressed through a (row stride, column stride) pair, so one kernel serves all four
/// transpose combinations and the transposed problem <c>Cᵀ = op(B)ᵀ·op(A)ᵀ</c> used for few rows. Each
/// element of C is a sum over p in increasing order, like the packed path, but the path is chosen from the
/// shape alone, so a given shape always takes the same path and results never depend on the thread count.
/// The loops are compiled fully optimised at once (<see cref="MethodImplOptions.AggressiveOptimization"/>):
/// otherwise they start at tier 0 and, called only a few times per step, could stay there for seconds.
/// </remarks>
[SkipLocalsInit]
internal static unsafe class NarrowGemm
{
    /// <summary>The widest product (columns, or rows) the direct path takes: one 512-bit vector of floats.</summary>
    public const int MaxWidth = 16;

    [ThreadStatic] private static float[]? t_strip;

    /// <summary>
    /// True when the shape takes this path: at most 16 columns; or at most 16 rows while op(B) stays under
    /// 4 MB (the transposed problem streams B's columns in groups of 8, which re-reads B's cache lines from
    /// memory once B outgrows the caches, where packing reads it once).
    /// </summary>
    public static bool Applies(int m, int n, int k) =>
        Vector512.IsHardwareAccelerated && (n <= MaxWidth || (m <= MaxWidth && (long)n * k <= 1 << 20));

    /// <summary>Row-major <c>C = alpha·op(A)·op(B) + beta·C</c> for a shape where <see cref="Applies"/> holds.</summary>
    public static void Multiply(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        if (n <= MaxWidth)
        {
            // op(A)[i, p] = a[i·rsA + p·csA]; op(B)[p, j] = b[p·rsB + j·csB]; C[i, j] = c[i·ldc + j].
            Strided(m, n, k, alpha, a, transA ? 1 : lda, transA ? lda : 1, b, transB ? 1 : ldb, transB ? ldb : 1, beta, c, ldc, 1);
        }
        else
        {
            // Cᵀ (n×m) = op(B)ᵀ·op(A)ᵀ: op(B)ᵀ[j, p] = op(B)[p, j], op(A)ᵀ[p, i] = op(A)[i, p], Cᵀ[j, i] = c[i·ldc + j].
            Strided(n, m, k, alpha, b, transB ? ldb : 1, transB ? 1 : ldb, a, transA ? lda : 1, transA ? 1 : lda, beta, c, 1, ldc);
        }
    }

    /// <summary>
    /// <c>X[m×w] = alpha·L·R + beta·X</c> with w ≤ 16, where <c>L[i, p] = l[i·rsL + p·csL]</c>,
    /// <c>R[p, j] = r[p·rsR + j·csR]</c> and <c>X[i, j] = x[i·rsX + j·csX]</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Strided(int m, int w, int k, float alpha, float* l, long rsL, long csL,
        float* r, long rsR, long csR, float beta, float* x, long rsX, long csX)
    {
        int need = k * MaxWidth;
        float[] strip = t_strip is { } s && s.Length >= need ? s : (t_strip = GC.AllocateUninitializedArray<float>(Math.Max(need, 4096), pinned: true));
        fixed (float* pr = strip)
        {
            // The strip: R with each row padded to 16 columns with zeros, so every step is one full vector.
            for (int p = 0; p < k; p++)
            {
                float* dst = pr + p * MaxWidth;
                float* src = r + p * rsR;
                int j = 0;
                for (; j < w; j++) dst[j] = src[j * csR];
                for (; j < MaxWidth; j++) dst[j] = 0f;
            }
            int i = 0;
            for (; i + 8 <= m; i += 8) Rows8(k, alpha, l + i * rsL, rsL, csL, pr, beta, x + i * rsX, rsX, csX, w);
            for (; i + 4 <= m; i += 4) Rows4(k, alpha, l + i * rsL, rsL, csL, pr, beta, x + i * rsX, rsX, csX, w);
            for (; i < m; i++) Rows1(k, alpha, l + i * rsL, csL, pr, beta, x + i * rsX, csX, w);
        }
    }

    // Eight rows at a time: eight independent FMA chains hide the FMA latency (4 cycles × 2 ports).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows8(int k, float alpha, float* l, long rsL, long csL, float* strip, float beta, float* x, long rsX, long csX, int w)
    {
        var c0 = Vector512<float>.Zero; var c1 = Vector512<float>.Zero; var c2 = Vector512<float>.Zero; var c3 = Vector512<float>.Zero;
        var c4 = Vector512<float>.Zero; var c5 = Vector512<float>.Zero; var c6 = Vector512<float>.Zero; var c7 = Vector512<float>.Zero;
        float* l0 = l, l1 = l + rsL, l2 = l + 2 * rsL, l3 = l + 3 * rsL, l4 = l + 4 * rsL, l5 = l + 5 * rsL, l6 = l + 6 * rsL, l7 = l + 7 * rsL;
        for (int p = 0; p < k; p++)
        {
            var bv = Vector512.Load(strip + p * MaxWidth);
            long o = p * csL;
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(l0[o]), bv, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(l1[o]), bv, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(l2[o]), bv, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(l3[o]), bv, c3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(l4[o]), bv, c4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(l5[o]), bv, c5);
            c6 = Vector512.FusedMultiplyAdd(Vector512.Create(l6[o]), bv, c6);
            c7 = Vector512.FusedMultiplyAdd(Vector512.Create(l7[o]), bv, c7);
        }
        StoreRow(c0, x, csX, w, alpha, beta); StoreRow(c1, x + rsX, csX, w, alpha, beta);
        StoreRow(c2, x + 2 * rsX, csX, w, alpha, beta); StoreRow(c3, x + 3 * rsX, csX, w, alpha, beta);
        StoreRow(c4, x + 4 * rsX, csX, w, alpha, beta); StoreRow(c5, x + 5 * rsX, csX, w, alpha, beta);
        StoreRow(c6, x + 6 * rsX, csX, w, alpha, beta); StoreRow(c7, x + 7 * rsX, csX, w, alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows4(int k, float alpha, float* l, long rsL, long csL, float* strip, float beta, float* x, long rsX, long csX, int w)
    {
        var c0 = Vector512<float>.Zero; var c1 = Vector512<float>.Zero; var c2 = Vector512<float>.Zero; var c3 = Vector512<float>.Zero;
        float* l0 = l, l1 = l + rsL, l2 = l + 2 * rsL, l3 = l + 3 * rsL;
        for (int p = 0; p < k; p++)
        {
            var bv = Vector512.Load(strip + p * MaxWidth);
            long o = p * csL;
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(l0[o]), bv, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(l1[o]), bv, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(l2[o]), bv, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(l3[o]), bv, c3);
        }
        StoreRow(c0, x, csX, w, alpha, beta); StoreRow(c1, x + rsX, csX, w, alpha, beta);
        StoreRow(c2, x + 2 * rsX, csX, w, alpha, beta); StoreRow(c3, x + 3 * rsX, csX, w, alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows1(int k, float alpha, float* l, long csL, float* strip, float beta, float* x, long csX, int w)
    {
        var c0 = Vector512<float>.Zero;
        for (int p = 0; p < k; p++)
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(l[p * csL]), Vector512.Load(strip + p * MaxWidth), c0);
        StoreRow(c0, x, csX, w, alpha, beta);
    }

    /// <summary>Writes the first w lanes of <c>alpha·acc + beta·X</c> (X not read when beta is 0, as BLAS).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(Vector512<float> acc, float* x, long csX, int w, float alpha, float beta)
    {
        if (w == MaxWidth && csX == 1)
        {
            var scaled = acc * Vector512.Create(alpha);
            (beta == 0f ? scaled : Vector512.FusedMultiplyAdd(Vector512.Load(x), Vector512.Create(beta), scaled)).Store(x);
            return;
        }
        float* t = stackalloc float[MaxWidth];
        acc.Store(t);
        for (int j = 0; j < w; j++)
        {
            float* dst = x + j * csX;
            *dst = beta == 0f ? alpha * t[j] : MathF.FusedMultiplyAdd(*dst, beta, alpha * t[j]);
        }
    }
}
