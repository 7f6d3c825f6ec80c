using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoRA.Managed.Kernels;

/// <summary>
/// The register tiles of <see cref="NarrowGemm"/>: R rows of C by one or two <see cref="Vector512{T}"/> of
/// columns, fed straight from unpacked A (one broadcast per row and step of p, through a row and a column
/// stride) and from rows of op(B) that are contiguous (B itself, or a strip copied from it).
/// </summary>
/// <remarks>
/// <para>Every element of C is one chain of fused multiply-adds over p in increasing order, starting from
/// zero, then written as <c>alpha·acc</c> (beta 0) or <c>fma(C, beta, alpha·acc)</c>: exactly what
/// <see cref="MicroKernels"/> does, so this path and the packed one give the same bits.</para>
/// <para>A tile always runs all its R rows: when fewer remain, the missing rows re-read the first row and
/// their results are dropped. Two leftover rows then cost the time of the R-row tile, which keeps enough
/// independent chains (FMA latency 4 cycles × 2 ports = 8) instead of running one latency-bound chain per row.</para>
/// <para>Full tiles are stored straight from the registers; partial ones (fewer rows or columns) go through a
/// stack tile first. The accumulators are stored before any call: no vector register survives a call, so a
/// call after the loop with live accumulators would make the JIT spill them inside the loop.</para>
/// </remarks>
[SkipLocalsInit]
internal static unsafe class NarrowKernels
{
    /// <summary>Floats in one vector: the column width of a one-vector tile.</summary>
    public const int V = 16;

    /// <summary>
    /// <c>rows</c> (1..8) rows × <c>w</c> (1..16) columns; A's row i at <c>l + i·rsL</c>, its step p at <c>p·csL</c>;
    /// op(B)'s row p at <c>b + p·rsB</c>, 16 readable floats each.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Rows8x16(int k, float alpha, float* l, long rsL, long csL, float* b, long rsB, float beta,
        float* c, int ldc, int rows, int w)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default,
            c6 = default, c7 = default;
        float* l0 = l, l1 = Row(l, rsL, 1, rows), l2 = Row(l, rsL, 2, rows), l3 = Row(l, rsL, 3, rows);
        float* l4 = Row(l, rsL, 4, rows), l5 = Row(l, rsL, 5, rows), l6 = Row(l, rsL, 6, rows),
            l7 = Row(l, rsL, 7, rows);
        long o = 0;
        int p = 0;
        // Two steps of p per iteration (each chain still takes p, then p + 1): half the loop's integer work,
        // which shares the issue width with 9 loads and 8 FMAs per step (docs/07-performance.md).
        for (; p + 2 <= k; p += 2, o += 2 * csL, b += 2 * rsB)
        {
            var bv = Vector512.Load(b);
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(l0[o]), bv, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(l1[o]), bv, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(l2[o]), bv, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(l3[o]), bv, c3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(l4[o]), bv, c4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(l5[o]), bv, c5);
            c6 = Vector512.FusedMultiplyAdd(Vector512.Create(l6[o]), bv, c6);
            c7 = Vector512.FusedMultiplyAdd(Vector512.Create(l7[o]), bv, c7);
            var bw = Vector512.Load(b + rsB);
            long q = o + csL;
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(l0[q]), bw, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(l1[q]), bw, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(l2[q]), bw, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(l3[q]), bw, c3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(l4[q]), bw, c4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(l5[q]), bw, c5);
            c6 = Vector512.FusedMultiplyAdd(Vector512.Create(l6[q]), bw, c6);
            c7 = Vector512.FusedMultiplyAdd(Vector512.Create(l7[q]), bw, c7);
        }
        for (; p < k; p++, o += csL, b += rsB)
        {
            var bv = Vector512.Load(b);
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(l0[o]), bv, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(l1[o]), bv, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(l2[o]), bv, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(l3[o]), bv, c3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(l4[o]), bv, c4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(l5[o]), bv, c5);
            c6 = Vector512.FusedMultiplyAdd(Vector512.Create(l6[o]), bv, c6);
            c7 = Vector512.FusedMultiplyAdd(Vector512.Create(l7[o]), bv, c7);
        }
        if (rows == 8 && w == V)
        {
            Store(c, c0, alpha, beta); Store(c + ldc, c1, alpha, beta);
            Store(c + 2L * ldc, c2, alpha, beta); Store(c + 3L * ldc, c3, alpha, beta);
            Store(c + 4L * ldc, c4, alpha, beta); Store(c + 5L * ldc, c5, alpha, beta);
            Store(c + 6L * ldc, c6, alpha, beta); Store(c + 7L * ldc, c7, alpha, beta);
            return;
        }
        float* t = stackalloc float[8 * V];
        c0.Store(t); c1.Store(t + V); c2.Store(t + 2 * V); c3.Store(t + 3 * V);
        c4.Store(t + 4 * V); c5.Store(t + 5 * V); c6.Store(t + 6 * V); c7.Store(t + 7 * V);
        StoreEdge(t, V, rows, c, ldc, w, alpha, beta);
    }

    /// <summary>As <see cref="Rows8x16"/> with four rows (1..4 valid): the tail of a block of rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Rows4x16(int k, float alpha, float* l, long rsL, long csL, float* b, long rsB, float beta,
        float* c, int ldc, int rows, int w)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
        float* l0 = l, l1 = Row(l, rsL, 1, rows), l2 = Row(l, rsL, 2, rows), l3 = Row(l, rsL, 3, rows);
        long o = 0;
        for (int p = 0; p < k; p++, o += csL, b += rsB)
        {
            var bv = Vector512.Load(b);
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(l0[o]), bv, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(l1[o]), bv, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(l2[o]), bv, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(l3[o]), bv, c3);
        }
        float* t = stackalloc float[4 * V];
        c0.Store(t); c1.Store(t + V); c2.Store(t + 2 * V); c3.Store(t + 3 * V);
        StoreEdge(t, V, rows, c, ldc, w, alpha, beta);
    }

    /// <summary>
    /// <c>rows</c> (1..8) rows × <c>w</c> (1..32) columns, two vectors per row: 16 chains, and each broadcast of A
    /// feeds two FMAs, so a step of p needs 10 loads for 16 FMAs instead of 9 for 8.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Rows8x32(int k, float alpha, float* l, long rsL, long csL, float* b, long rsB, float beta,
        float* c, int ldc, int rows, int w)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default,
            c70 = default, c71 = default;
        float* l0 = l, l1 = Row(l, rsL, 1, rows), l2 = Row(l, rsL, 2, rows), l3 = Row(l, rsL, 3, rows);
        float* l4 = Row(l, rsL, 4, rows), l5 = Row(l, rsL, 5, rows), l6 = Row(l, rsL, 6, rows),
            l7 = Row(l, rsL, 7, rows);
        long o = 0;
        for (int p = 0; p < k; p++, o += csL, b += rsB)
        {
            var b0 = Vector512.Load(b); var b1 = Vector512.Load(b + V);
            var a0 = Vector512.Create(l0[o]); c00 = Vector512.FusedMultiplyAdd(a0, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(a0, b1, c01);
            var a1 = Vector512.Create(l1[o]); c10 = Vector512.FusedMultiplyAdd(a1, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(a1, b1, c11);
            var a2 = Vector512.Create(l2[o]); c20 = Vector512.FusedMultiplyAdd(a2, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(a2, b1, c21);
            var a3 = Vector512.Create(l3[o]); c30 = Vector512.FusedMultiplyAdd(a3, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(a3, b1, c31);
            var a4 = Vector512.Create(l4[o]); c40 = Vector512.FusedMultiplyAdd(a4, b0, c40);
            c41 = Vector512.FusedMultiplyAdd(a4, b1, c41);
            var a5 = Vector512.Create(l5[o]); c50 = Vector512.FusedMultiplyAdd(a5, b0, c50);
            c51 = Vector512.FusedMultiplyAdd(a5, b1, c51);
            var a6 = Vector512.Create(l6[o]); c60 = Vector512.FusedMultiplyAdd(a6, b0, c60);
            c61 = Vector512.FusedMultiplyAdd(a6, b1, c61);
            var a7 = Vector512.Create(l7[o]); c70 = Vector512.FusedMultiplyAdd(a7, b0, c70);
            c71 = Vector512.FusedMultiplyAdd(a7, b1, c71);
        }
        if (rows == 8 && w == 2 * V)
        {
            Store(c, c00, alpha, beta); Store(c + V, c01, alpha, beta); c += ldc;
            Store(c, c10, alpha, beta); Store(c + V, c11, alpha, beta); c += ldc;
            Store(c, c20, alpha, beta); Store(c + V, c21, alpha, beta); c += ldc;
            Store(c, c30, alpha, beta); Store(c + V, c31, alpha, beta); c += ldc;
            Store(c, c40, alpha, beta); Store(c + V, c41, alpha, beta); c += ldc;
            Store(c, c50, alpha, beta); Store(c + V, c51, alpha, beta); c += ldc;
            Store(c, c60, alpha, beta); Store(c + V, c61, alpha, beta); c += ldc;
            Store(c, c70, alpha, beta); Store(c + V, c71, alpha, beta);
            return;
        }
        float* t = stackalloc float[8 * 2 * V];
        c00.Store(t); c01.Store(t + V); c10.Store(t + 2 * V); c11.Store(t + 3 * V);
        c20.Store(t + 4 * V); c21.Store(t + 5 * V); c30.Store(t + 6 * V); c31.Store(t + 7 * V);
        c40.Store(t + 8 * V); c41.Store(t + 9 * V); c50.Store(t + 10 * V); c51.Store(t + 11 * V);
        c60.Store(t + 12 * V); c61.Store(t + 13 * V); c70.Store(t + 14 * V); c71.Store(t + 15 * V);
        StoreEdge(t, 2 * V, rows, c, ldc, w, alpha, beta);
    }

    /// <summary>As <see cref="Rows8x32"/> with four rows (1..4 valid): 8 chains.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Rows4x32(int k, float alpha, float* l, long rsL, long csL, float* b, long rsB, float beta,
        float* c, int ldc, int rows, int w)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default;
        float* l0 = l, l1 = Row(l, rsL, 1, rows), l2 = Row(l, rsL, 2, rows), l3 = Row(l, rsL, 3, rows);
        long o = 0;
        for (int p = 0; p < k; p++, o += csL, b += rsB)
        {
            var b0 = Vector512.Load(b); var b1 = Vector512.Load(b + V);
            var a0 = Vector512.Create(l0[o]); c00 = Vector512.FusedMultiplyAdd(a0, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(a0, b1, c01);
            var a1 = Vector512.Create(l1[o]); c10 = Vector512.FusedMultiplyAdd(a1, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(a1, b1, c11);
            var a2 = Vector512.Create(l2[o]); c20 = Vector512.FusedMultiplyAdd(a2, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(a2, b1, c21);
            var a3 = Vector512.Create(l3[o]); c30 = Vector512.FusedMultiplyAdd(a3, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(a3, b1, c31);
        }
        if (rows == 4 && w == 2 * V)
        {
            Store(c, c00, alpha, beta); Store(c + V, c01, alpha, beta); c += ldc;
            Store(c, c10, alpha, beta); Store(c + V, c11, alpha, beta); c += ldc;
            Store(c, c20, alpha, beta); Store(c + V, c21, alpha, beta); c += ldc;
            Store(c, c30, alpha, beta); Store(c + V, c31, alpha, beta);
            return;
        }
        float* t = stackalloc float[4 * 2 * V];
        c00.Store(t); c01.Store(t + V); c10.Store(t + 2 * V); c11.Store(t + 3 * V);
        c20.Store(t + 4 * V); c21.Store(t + 5 * V); c30.Store(t + 6 * V); c31.Store(t + 7 * V);
        StoreEdge(t, 2 * V, rows, c, ldc, w, alpha, beta);
    }

    /// <summary>
    /// <c>rows</c> (1..12) rows × <c>w</c> (1..32) columns from a packed A, <c>pa[p·12 + i]</c> (rows past the valid
    /// ones zero): 24 chains, so 9 to 12 rows of C take one pass over op(B), each line of it loaded once, where
    /// two passes of 8 and 4 rows loaded every line twice (measured in docs/07-performance.md, "Decisions in the
    /// kernels").
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Rows12x32(int k, float alpha, float* pa, float* b, long rsB, float beta, float* c, int ldc,
        int rows, int w)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default,
            c70 = default, c71 = default;
        Vector512<float> c80 = default, c81 = default, c90 = default, c91 = default, ca0 = default, ca1 = default,
            cb0 = default, cb1 = default;
        for (int p = 0; p < k; p++, pa += 12, b += rsB)
        {
            var b0 = Vector512.Load(b); var b1 = Vector512.Load(b + V);
            var a = Vector512.Create(pa[0]); c00 = Vector512.FusedMultiplyAdd(a, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(a, b1, c01);
            a = Vector512.Create(pa[1]); c10 = Vector512.FusedMultiplyAdd(a, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(a, b1, c11);
            a = Vector512.Create(pa[2]); c20 = Vector512.FusedMultiplyAdd(a, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(a, b1, c21);
            a = Vector512.Create(pa[3]); c30 = Vector512.FusedMultiplyAdd(a, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(a, b1, c31);
            a = Vector512.Create(pa[4]); c40 = Vector512.FusedMultiplyAdd(a, b0, c40);
            c41 = Vector512.FusedMultiplyAdd(a, b1, c41);
            a = Vector512.Create(pa[5]); c50 = Vector512.FusedMultiplyAdd(a, b0, c50);
            c51 = Vector512.FusedMultiplyAdd(a, b1, c51);
            a = Vector512.Create(pa[6]); c60 = Vector512.FusedMultiplyAdd(a, b0, c60);
            c61 = Vector512.FusedMultiplyAdd(a, b1, c61);
            a = Vector512.Create(pa[7]); c70 = Vector512.FusedMultiplyAdd(a, b0, c70);
            c71 = Vector512.FusedMultiplyAdd(a, b1, c71);
            a = Vector512.Create(pa[8]); c80 = Vector512.FusedMultiplyAdd(a, b0, c80);
            c81 = Vector512.FusedMultiplyAdd(a, b1, c81);
            a = Vector512.Create(pa[9]); c90 = Vector512.FusedMultiplyAdd(a, b0, c90);
            c91 = Vector512.FusedMultiplyAdd(a, b1, c91);
            a = Vector512.Create(pa[10]); ca0 = Vector512.FusedMultiplyAdd(a, b0, ca0);
            ca1 = Vector512.FusedMultiplyAdd(a, b1, ca1);
            a = Vector512.Create(pa[11]); cb0 = Vector512.FusedMultiplyAdd(a, b0, cb0);
            cb1 = Vector512.FusedMultiplyAdd(a, b1, cb1);
        }
        float* t = stackalloc float[12 * 2 * V];
        c00.Store(t); c01.Store(t + V); c10.Store(t + 2 * V); c11.Store(t + 3 * V);
        c20.Store(t + 4 * V); c21.Store(t + 5 * V); c30.Store(t + 6 * V); c31.Store(t + 7 * V);
        c40.Store(t + 8 * V); c41.Store(t + 9 * V); c50.Store(t + 10 * V); c51.Store(t + 11 * V);
        c60.Store(t + 12 * V); c61.Store(t + 13 * V); c70.Store(t + 14 * V); c71.Store(t + 15 * V);
        c80.Store(t + 16 * V); c81.Store(t + 17 * V); c90.Store(t + 18 * V); c91.Store(t + 19 * V);
        ca0.Store(t + 20 * V); ca1.Store(t + 21 * V); cb0.Store(t + 22 * V); cb1.Store(t + 23 * V);
        StoreEdge(t, 2 * V, rows, c, ldc, w, alpha, beta);
    }

    /// <summary>
    /// As <see cref="Rows12x32"/> with ten rows (9..10 valid): 20 chains, none of them for a row that is dropped
    /// (the classifier's weight gradient, (64×10)ᵀ·64×256, has exactly ten). Step p's ten values of A are at
    /// <c>pa + p·stepA</c>: a packed panel (stepA 12) or, for a transposed A, A itself (stepA = lda). A whole
    /// tile is stored straight from the registers, as they are when alpha is 1 and beta 0 (acc·1 is acc, bit for bit).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Rows10x32(int k, float alpha, float* pa, long stepA, float* b, long rsB, float beta, float* c,
        int ldc, int rows, int w)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default,
            c70 = default, c71 = default;
        Vector512<float> c80 = default, c81 = default, c90 = default, c91 = default;
        for (int p = 0; p < k; p++, pa += stepA, b += rsB)
        {
            var b0 = Vector512.Load(b); var b1 = Vector512.Load(b + V);
            var a = Vector512.Create(pa[0]); c00 = Vector512.FusedMultiplyAdd(a, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(a, b1, c01);
            a = Vector512.Create(pa[1]); c10 = Vector512.FusedMultiplyAdd(a, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(a, b1, c11);
            a = Vector512.Create(pa[2]); c20 = Vector512.FusedMultiplyAdd(a, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(a, b1, c21);
            a = Vector512.Create(pa[3]); c30 = Vector512.FusedMultiplyAdd(a, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(a, b1, c31);
            a = Vector512.Create(pa[4]); c40 = Vector512.FusedMultiplyAdd(a, b0, c40);
            c41 = Vector512.FusedMultiplyAdd(a, b1, c41);
            a = Vector512.Create(pa[5]); c50 = Vector512.FusedMultiplyAdd(a, b0, c50);
            c51 = Vector512.FusedMultiplyAdd(a, b1, c51);
            a = Vector512.Create(pa[6]); c60 = Vector512.FusedMultiplyAdd(a, b0, c60);
            c61 = Vector512.FusedMultiplyAdd(a, b1, c61);
            a = Vector512.Create(pa[7]); c70 = Vector512.FusedMultiplyAdd(a, b0, c70);
            c71 = Vector512.FusedMultiplyAdd(a, b1, c71);
            a = Vector512.Create(pa[8]); c80 = Vector512.FusedMultiplyAdd(a, b0, c80);
            c81 = Vector512.FusedMultiplyAdd(a, b1, c81);
            a = Vector512.Create(pa[9]); c90 = Vector512.FusedMultiplyAdd(a, b0, c90);
            c91 = Vector512.FusedMultiplyAdd(a, b1, c91);
        }
        if (rows == 10 && w == 2 * V)
        {
            // A whole tile goes straight from the registers to C: no stack tile, no masks.
            if (alpha == 1f && beta == 0f)
            {
                c00.Store(c); c01.Store(c + V); c += ldc; c10.Store(c); c11.Store(c + V); c += ldc;
                c20.Store(c); c21.Store(c + V); c += ldc; c30.Store(c); c31.Store(c + V); c += ldc;
                c40.Store(c); c41.Store(c + V); c += ldc; c50.Store(c); c51.Store(c + V); c += ldc;
                c60.Store(c); c61.Store(c + V); c += ldc; c70.Store(c); c71.Store(c + V); c += ldc;
                c80.Store(c); c81.Store(c + V); c += ldc; c90.Store(c); c91.Store(c + V);
                return;
            }
            Store(c, c00, alpha, beta); Store(c + V, c01, alpha, beta); c += ldc;
            Store(c, c10, alpha, beta); Store(c + V, c11, alpha, beta); c += ldc;
            Store(c, c20, alpha, beta); Store(c + V, c21, alpha, beta); c += ldc;
            Store(c, c30, alpha, beta); Store(c + V, c31, alpha, beta); c += ldc;
            Store(c, c40, alpha, beta); Store(c + V, c41, alpha, beta); c += ldc;
            Store(c, c50, alpha, beta); Store(c + V, c51, alpha, beta); c += ldc;
            Store(c, c60, alpha, beta); Store(c + V, c61, alpha, beta); c += ldc;
            Store(c, c70, alpha, beta); Store(c + V, c71, alpha, beta); c += ldc;
            Store(c, c80, alpha, beta); Store(c + V, c81, alpha, beta); c += ldc;
            Store(c, c90, alpha, beta); Store(c + V, c91, alpha, beta);
            return;
        }
        float* t = stackalloc float[10 * 2 * V];
        c00.Store(t); c01.Store(t + V); c10.Store(t + 2 * V); c11.Store(t + 3 * V);
        c20.Store(t + 4 * V); c21.Store(t + 5 * V); c30.Store(t + 6 * V); c31.Store(t + 7 * V);
        c40.Store(t + 8 * V); c41.Store(t + 9 * V); c50.Store(t + 10 * V); c51.Store(t + 11 * V);
        c60.Store(t + 12 * V); c61.Store(t + 13 * V); c70.Store(t + 14 * V); c71.Store(t + 15 * V);
        c80.Store(t + 16 * V); c81.Store(t + 17 * V); c90.Store(t + 18 * V); c91.Store(t + 19 * V);
        StoreEdge(t, 2 * V, rows, c, ldc, w, alpha, beta);
    }

    /// <summary>Row i of A, or row 0 for a row past the valid ones (computed and dropped, see the remarks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* Row(float* l, long rsL, int i, int rows) => i < rows ? l + i * rsL : l;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector512<float> acc, float alpha, float beta)
    {
        var scaled = acc * Vector512.Create(alpha);
        (beta == 0f ? scaled : Vector512.FusedMultiplyAdd(Vector512.Load(c), Vector512.Create(beta), scaled)).Store(c);
    }

    /// <summary>
    /// Writes the first w columns of <c>alpha·tile + beta·C</c> for each valid row (C not read when beta is 0, as
    /// BLAS), 16 columns at a time with masked loads and stores: the same two roundings per element as
    /// <see cref="Store"/>, and no column past w is touched. Compiled fully optimised at once like the tiles:
    /// at tier 0 it made 64×256·(10×256)ᵀ a fifth slower for the first seconds of a process.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void StoreEdge(float* tile, int stride, int rows, float* c, int ldc, int w, float alpha, float beta)
    {
        var va = Vector512.Create(alpha);
        var vb = Vector512.Create(beta);
        for (int r = 0; r < rows; r++, tile += stride, c += ldc)
            for (int j = 0; j < w; j += V)
            {
                var mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(w - j)).AsSingle();
                var scaled = Vector512.Load(tile + j) * va;
                if (beta != 0f) scaled = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(c + j, mask, default), vb, scaled);
                Avx512F.MaskStore(c + j, mask, scaled);
            }
    }
}
