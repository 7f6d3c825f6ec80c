using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoRA.Managed.Kernels;

/// <summary>
/// The part of <see cref="NarrowGemm"/> for products with at most <see cref="MaxColumns"/> columns (the
/// classifier's last layer, N = 10), vectorised over the rows of C instead of its columns: one
/// <see cref="Vector512{T}"/> holds one column of sixteen rows, and each step of p multiplies it by a broadcast of
/// op(B)[p, j] for every column j. The column-vectorised tile put a row's 10 columns in 16 lanes and could use at
/// most 10/16 of the FMA rate; here every lane carries a result.
/// </summary>
/// <remarks>
/// <para>op(A) is packed k-major in panels of 32 rows (<c>pa[p·32 + i]</c>), sixteen rows at a time through the
/// in-register 16×16 transpose when A is not transposed, by vector copies when it is; rows past m are zero and
/// their results dropped. op(B) is not packed: its elements are broadcast straight from memory.</para>
/// <para>Each element of C is still one chain of fused multiply-adds over p in increasing order from zero, written
/// as <c>alpha·acc</c> (beta 0) or <c>fma(C, beta, alpha·acc)</c>, C updated after every block of
/// <see cref="Gemm.KC"/>: the packed 8×32 path's bits.</para>
/// </remarks>
[SkipLocalsInit]
internal static unsafe class RowVectorGemm
{
    /// <summary>
    /// Most columns of C this path takes: 20 accumulators for two 16-row panels. Past 10 the transposes of A cost
    /// more than the lanes gained (measurements: docs/07-performance.md, "Decisions in the kernels").
    /// </summary>
    public const int MaxColumns = 10;

    private const int Panel = 32;
    private const int Step = 64;

    /// <summary>
    /// <c>C = alpha·op(A)·op(B) + beta·C</c> for n ≤ <see cref="MaxColumns"/>; op(A)[i, p] = a[i·rsA + p·csA],
    /// op(B)[p, j] = b[p·rsB + j·csB]; <paramref name="packed"/> holds <see cref="Gemm.KC"/>·32 floats, 64-byte
    /// aligned.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Multiply(int m, int n, int k, float alpha, float* a, long rsA, long csA,
        float* b, long rsB, long csB, float beta, float* c, int ldc, float* packed)
    {
        float* acc = stackalloc float[MaxColumns * Panel];
        for (int p0 = 0; p0 < k; p0 += Gemm.KC)
        {
            int kc = Math.Min(Gemm.KC, k - p0);
            float betaEff = p0 == 0 ? beta : 1f;
            float* bp = b + p0 * rsB;
            for (int i0 = 0; i0 < m; i0 += Panel)
            {
                int rows = Math.Min(Panel, m - i0);
                // The chains of this panel's 32×n block of C live in acc (column-major, acc[j·32 + i]) between
                // steps of Step p: each step packs 32×Step of A into a buffer that stays in L1 and runs the tile
                // over it. Packing the whole panel first (32 KB at kc = 256) sent the buffer through L2 and left
                // the transposes (shuffle port only) and the FMAs in separate phases.
                for (int j = 0; j < n; j++)
                {
                    Vector512<float>.Zero.Store(acc + j * Panel);
                    Vector512<float>.Zero.Store(acc + j * Panel + 16);
                }
                for (int q = 0; q < kc; q += Step)
                {
                    int kq = Math.Min(Step, kc - q);
                    // dst[p·32 + i] = op(A)[i, p]
                    NarrowGemm.FillStrip(a + i0 * rsA + (p0 + q) * csA, csA, rsA, kq, rows, Panel, packed);
                    float* bq = bp + q * rsB;
                    switch (n)
                    {
                        case 1: Tile<C1>(kq, packed, bq, rsB, csB, acc); break;
                        case 2: Tile<C2>(kq, packed, bq, rsB, csB, acc); break;
                        case 3: Tile<C3>(kq, packed, bq, rsB, csB, acc); break;
                        case 4: Tile<C4>(kq, packed, bq, rsB, csB, acc); break;
                        case 5: Tile<C5>(kq, packed, bq, rsB, csB, acc); break;
                        case 6: Tile<C6>(kq, packed, bq, rsB, csB, acc); break;
                        case 7: Tile<C7>(kq, packed, bq, rsB, csB, acc); break;
                        case 8: Tile<C8>(kq, packed, bq, rsB, csB, acc); break;
                        case 9: Tile<C9>(kq, packed, bq, rsB, csB, acc); break;
                        default: Tile<C10>(kq, packed, bq, rsB, csB, acc); break;
                    }
                }
                StoreColumns(acc, n, rows, c + (long)i0 * ldc, ldc, alpha, betaEff);
            }
        }
    }

    /// <summary>
    /// 32 rows × N columns: two accumulators per column (rows 0–15 and 16–31), 2N chains, loaded from and stored back
    /// to the column-major tile t. The column count is a type so the JIT drops the unused accumulators and branches
    /// from each instantiation.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TN>(int kc, float* pa, float* b, long rsB, long csB, float* t) where TN : struct, IColumns
    {
        int n = TN.N;
        Vector512<float> x0 = Vector512.Load(t), y0 = Vector512.Load(t + 16);
        Vector512<float> x1 = default, x2 = default, x3 = default, x4 = default, x5 = default, x6 = default,
            x7 = default, x8 = default, x9 = default;
        Vector512<float> y1 = default, y2 = default, y3 = default, y4 = default, y5 = default, y6 = default,
            y7 = default, y8 = default, y9 = default;
        if (n > 1) { x1 = Vector512.Load(t + 1 * Panel); y1 = Vector512.Load(t + 1 * Panel + 16); }
        if (n > 2) { x2 = Vector512.Load(t + 2 * Panel); y2 = Vector512.Load(t + 2 * Panel + 16); }
        if (n > 3) { x3 = Vector512.Load(t + 3 * Panel); y3 = Vector512.Load(t + 3 * Panel + 16); }
        if (n > 4) { x4 = Vector512.Load(t + 4 * Panel); y4 = Vector512.Load(t + 4 * Panel + 16); }
        if (n > 5) { x5 = Vector512.Load(t + 5 * Panel); y5 = Vector512.Load(t + 5 * Panel + 16); }
        if (n > 6) { x6 = Vector512.Load(t + 6 * Panel); y6 = Vector512.Load(t + 6 * Panel + 16); }
        if (n > 7) { x7 = Vector512.Load(t + 7 * Panel); y7 = Vector512.Load(t + 7 * Panel + 16); }
        if (n > 8) { x8 = Vector512.Load(t + 8 * Panel); y8 = Vector512.Load(t + 8 * Panel + 16); }
        if (n > 9) { x9 = Vector512.Load(t + 9 * Panel); y9 = Vector512.Load(t + 9 * Panel + 16); }
        float* b0 = b, b1 = b + csB, b2 = b + 2 * csB, b3 = b + 3 * csB, b4 = b + 4 * csB, b5 = b + 5 * csB;
        float* b6 = b + 6 * csB, b7 = b + 7 * csB, b8 = b + 8 * csB, b9 = b + 9 * csB;
        long o = 0;
        for (int p = 0; p < kc; p++, pa += Panel, o += rsB)
        {
            var u = Vector512.Load(pa);
            var v = Vector512.Load(pa + 16);
            Vector512<float> s;
            s = Vector512.Create(b0[o]); x0 = Vector512.FusedMultiplyAdd(u, s, x0);
            y0 = Vector512.FusedMultiplyAdd(v, s, y0);
            if (n > 1)
            {
                s = Vector512.Create(b1[o]);
                x1 = Vector512.FusedMultiplyAdd(u, s, x1); y1 = Vector512.FusedMultiplyAdd(v, s, y1);
            }
            if (n > 2)
            {
                s = Vector512.Create(b2[o]);
                x2 = Vector512.FusedMultiplyAdd(u, s, x2); y2 = Vector512.FusedMultiplyAdd(v, s, y2);
            }
            if (n > 3)
            {
                s = Vector512.Create(b3[o]);
                x3 = Vector512.FusedMultiplyAdd(u, s, x3); y3 = Vector512.FusedMultiplyAdd(v, s, y3);
            }
            if (n > 4)
            {
                s = Vector512.Create(b4[o]);
                x4 = Vector512.FusedMultiplyAdd(u, s, x4); y4 = Vector512.FusedMultiplyAdd(v, s, y4);
            }
            if (n > 5)
            {
                s = Vector512.Create(b5[o]);
                x5 = Vector512.FusedMultiplyAdd(u, s, x5); y5 = Vector512.FusedMultiplyAdd(v, s, y5);
            }
            if (n > 6)
            {
                s = Vector512.Create(b6[o]);
                x6 = Vector512.FusedMultiplyAdd(u, s, x6); y6 = Vector512.FusedMultiplyAdd(v, s, y6);
            }
            if (n > 7)
            {
                s = Vector512.Create(b7[o]);
                x7 = Vector512.FusedMultiplyAdd(u, s, x7); y7 = Vector512.FusedMultiplyAdd(v, s, y7);
            }
            if (n > 8)
            {
                s = Vector512.Create(b8[o]);
                x8 = Vector512.FusedMultiplyAdd(u, s, x8); y8 = Vector512.FusedMultiplyAdd(v, s, y8);
            }
            if (n > 9)
            {
                s = Vector512.Create(b9[o]);
                x9 = Vector512.FusedMultiplyAdd(u, s, x9); y9 = Vector512.FusedMultiplyAdd(v, s, y9);
            }
        }
        x0.Store(t); y0.Store(t + 16);
        if (n > 1) { x1.Store(t + Panel); y1.Store(t + Panel + 16); }
        if (n > 2) { x2.Store(t + 2 * Panel); y2.Store(t + 2 * Panel + 16); }
        if (n > 3) { x3.Store(t + 3 * Panel); y3.Store(t + 3 * Panel + 16); }
        if (n > 4) { x4.Store(t + 4 * Panel); y4.Store(t + 4 * Panel + 16); }
        if (n > 5) { x5.Store(t + 5 * Panel); y5.Store(t + 5 * Panel + 16); }
        if (n > 6) { x6.Store(t + 6 * Panel); y6.Store(t + 6 * Panel + 16); }
        if (n > 7) { x7.Store(t + 7 * Panel); y7.Store(t + 7 * Panel + 16); }
        if (n > 8) { x8.Store(t + 8 * Panel); y8.Store(t + 8 * Panel + 16); }
        if (n > 9) { x9.Store(t + 9 * Panel); y9.Store(t + 9 * Panel + 16); }
    }

    /// <summary>
    /// Writes <c>alpha·tile + beta·C</c> for the valid rows of a column-major 32-row tile: each 16 rows are turned
    /// round in registers, then each row goes out with one masked store of n columns (the same two roundings per
    /// element as the other tiles; C is not read when beta is 0).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void StoreColumns(float* tile, int n, int rows, float* c, int ldc, float alpha, float beta)
    {
        float* r = stackalloc float[16 * 16];
        for (int h = 0; h < rows; h += 16)
        {
            Packing.Transpose16x16(tile + h, Panel, n, r, 16);
            NarrowKernels.StoreEdge(r, 16, Math.Min(16, rows - h), c + (long)h * ldc, ldc, n, alpha, beta);
        }
    }

    /// <summary>A column count as a type, so each <see cref="Tile{TN}"/> is compiled for its own count.</summary>
    private interface IColumns { static abstract int N { get; } }
    private struct C1 : IColumns { public static int N => 1; }
    private struct C2 : IColumns { public static int N => 2; }
    private struct C3 : IColumns { public static int N => 3; }
    private struct C4 : IColumns { public static int N => 4; }
    private struct C5 : IColumns { public static int N => 5; }
    private struct C6 : IColumns { public static int N => 6; }
    private struct C7 : IColumns { public static int N => 7; }
    private struct C8 : IColumns { public static int N => 8; }
    private struct C9 : IColumns { public static int N => 9; }
    private struct C10 : IColumns { public static int N => 10; }
}
