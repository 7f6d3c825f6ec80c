using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LoRA.Managed.Kernels;

/// <summary>
/// The direct path of <see cref="Gemm"/> for products with at most 16 columns or at most 16 rows: the
/// classifier's last layer (N = 10), its weight gradient (M = 10), and LoRA's rank-r factors. The packed
/// path pads such a product to 8×32 tiles and packs all of A for a few useful columns or rows; here C is
/// computed in blocks of 16 columns, each block's op(B) copied once into a k×16 zero-padded strip, and each
/// row of a block is one <see cref="Vector512{T}"/> accumulator fed straight from A's rows, unpacked.
/// </summary>
/// <remarks>
/// <para>A is addressed through a (row stride, column stride) pair, so one kernel serves every transpose.
/// With few columns there is one block and A streams through once; with few rows A is at most 16×k and
/// stays in L1 while the blocks sweep across B.</para>
/// <para>Each element of C is summed exactly as the packed path sums it (FMAs over p in increasing order, C
/// updated after every block of <see cref="Gemm.KC"/>), so the two paths give the same bits for every shape
/// and results never depend on which path or how many threads ran. The loops are compiled fully optimised at once (<see cref="MethodImplOptions.AggressiveOptimization"/>):
/// otherwise they start at tier 0 and, called only a few times per step, could stay there for seconds.</para>
/// </remarks>
[SkipLocalsInit]
internal static unsafe class NarrowGemm
{
    /// <summary>Columns of C per block: one 512-bit vector of floats.</summary>
    public const int Width = 16;

    [ThreadStatic] private static float[]? t_strip;

    /// <summary>
    /// True when the shape takes this path: at most 16 columns; or at most 16 rows with A under 256 KB
    /// (every block of columns re-reads all of A, which must stay in cache for that to be free).
    /// </summary>
    public static bool Applies(int m, int n, int k) =>
        Vector512.IsHardwareAccelerated && (n <= Width || (m <= Width && (long)m * k <= 1 << 16));

    /// <summary>Row-major <c>C = alpha·op(A)·op(B) + beta·C</c> for a shape where <see cref="Applies"/> holds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Multiply(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        // op(A)[i, p] = a[i·rsA + p·csA]; op(B)[p, j] = b[p·rsB + j·csB].
        long rsA = transA ? 1 : lda, csA = transA ? lda : 1;
        long rsB = transB ? 1 : ldb, csB = transB ? ldb : 1;
        int need = k * Width;
        float[] strip = t_strip is { } s && s.Length >= need ? s : (t_strip = GC.AllocateUninitializedArray<float>(Math.Max(need, 4096), pinned: true));
        fixed (float* pr = strip)
        {
            for (int j0 = 0; j0 < n; j0 += Width)
            {
                int w = Math.Min(Width, n - j0);
                // The strip: this block of op(B), each row padded to 16 columns with zeros.
                float* bj = b + j0 * csB;
                if (csB == 1 && w == Width)
                    for (int p = 0; p < k; p++) Vector512.Load(bj + p * rsB).Store(pr + p * Width);
                else
                    for (int p = 0; p < k; p++)
                    {
                        float* dst = pr + p * Width, src = bj + p * rsB;
                        int j = 0;
                        for (; j < w; j++) dst[j] = src[j * csB];
                        for (; j < Width; j++) dst[j] = 0f;
                    }
                float* cj = c + j0;
                // The shared dimension in blocks of Gemm.KC, C updated after each (beta, then 1) exactly as the
                // packed path does, so both paths give the same bits for every shape.
                for (int p0 = 0; p0 < k; p0 += Gemm.KC)
                {
                    int kc = Math.Min(Gemm.KC, k - p0);
                    float betaEff = p0 == 0 ? beta : 1f;
                    float* ap = a + p0 * csA, sp = pr + p0 * Width;
                    int i = 0;
                    for (; i + 8 <= m; i += 8) Rows8(kc, alpha, ap + i * rsA, rsA, csA, sp, betaEff, cj + (long)i * ldc, ldc, w);
                    for (; i + 4 <= m; i += 4) Rows4(kc, alpha, ap + i * rsA, rsA, csA, sp, betaEff, cj + (long)i * ldc, ldc, w);
                    for (; i < m; i++) Rows1(kc, alpha, ap + i * rsA, csA, sp, betaEff, cj + (long)i * ldc, w);
                }
            }
        }
    }

    // Eight rows at a time: eight independent FMA chains hide the FMA latency (4 cycles × 2 ports). The
    // accumulators go to a stack tile before any call: no vector register survives a call, so a call after
    // the loop would make the JIT spill all eight to memory inside the loop.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows8(int k, float alpha, float* l, long rsL, long csL, float* strip, float beta, float* c, int ldc, int w)
    {
        var c0 = Vector512<float>.Zero; var c1 = Vector512<float>.Zero; var c2 = Vector512<float>.Zero; var c3 = Vector512<float>.Zero;
        var c4 = Vector512<float>.Zero; var c5 = Vector512<float>.Zero; var c6 = Vector512<float>.Zero; var c7 = Vector512<float>.Zero;
        float* l0 = l, l1 = l + rsL, l2 = l + 2 * rsL, l3 = l + 3 * rsL, l4 = l + 4 * rsL, l5 = l + 5 * rsL, l6 = l + 6 * rsL, l7 = l + 7 * rsL;
        for (int p = 0; p < k; p++)
        {
            var bv = Vector512.Load(strip + p * Width);
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
        float* t = stackalloc float[8 * Width];
        c0.Store(t); c1.Store(t + Width); c2.Store(t + 2 * Width); c3.Store(t + 3 * Width);
        c4.Store(t + 4 * Width); c5.Store(t + 5 * Width); c6.Store(t + 6 * Width); c7.Store(t + 7 * Width);
        StoreRows(t, 8, c, ldc, w, alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows4(int k, float alpha, float* l, long rsL, long csL, float* strip, float beta, float* c, int ldc, int w)
    {
        var c0 = Vector512<float>.Zero; var c1 = Vector512<float>.Zero; var c2 = Vector512<float>.Zero; var c3 = Vector512<float>.Zero;
        float* l0 = l, l1 = l + rsL, l2 = l + 2 * rsL, l3 = l + 3 * rsL;
        for (int p = 0; p < k; p++)
        {
            var bv = Vector512.Load(strip + p * Width);
            long o = p * csL;
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(l0[o]), bv, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(l1[o]), bv, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(l2[o]), bv, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(l3[o]), bv, c3);
        }
        float* t = stackalloc float[4 * Width];
        c0.Store(t); c1.Store(t + Width); c2.Store(t + 2 * Width); c3.Store(t + 3 * Width);
        StoreRows(t, 4, c, ldc, w, alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows1(int k, float alpha, float* l, long csL, float* strip, float beta, float* c, int w)
    {
        var c0 = Vector512<float>.Zero;
        for (int p = 0; p < k; p++)
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(l[p * csL]), Vector512.Load(strip + p * Width), c0);
        float* t = stackalloc float[Width];
        c0.Store(t);
        StoreRows(t, 1, c, 0, w, alpha, beta);
    }

    /// <summary>Writes the first w columns of <c>alpha·tile + beta·C</c> for each row (C not read when beta is 0, as BLAS).</summary>
    private static void StoreRows(float* tile, int rows, float* c, int ldc, int w, float alpha, float beta)
    {
        for (int r = 0; r < rows; r++, tile += Width, c += ldc)
        {
            if (w == Width)
            {
                var scaled = Vector512.Load(tile) * Vector512.Create(alpha);
                (beta == 0f ? scaled : Vector512.FusedMultiplyAdd(Vector512.Load(c), Vector512.Create(beta), scaled)).Store(c);
                continue;
            }
            for (int j = 0; j < w; j++)
                c[j] = beta == 0f ? alpha * tile[j] : MathF.FusedMultiplyAdd(c[j], beta, alpha * tile[j]);
        }
    }
}
