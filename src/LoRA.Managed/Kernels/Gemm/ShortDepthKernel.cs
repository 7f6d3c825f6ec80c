using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoRA.Managed.Kernels;

/// <summary>
/// The tile of <see cref="NarrowGemm"/> for a shallow product (k at most <see cref="MaxDepth"/>; the input
/// gradient through the classifier's last layer has k = 10): a k×32 block of op(B) is held in registers (2k
/// vectors) while four rows of C at a time sweep down all m rows, so B is loaded once per block of columns and
/// each row costs k broadcasts of A and 2k FMAs, with no loop over p and no call per eight rows.
/// </summary>
/// <remarks>
/// The depth is a type (<see cref="IDepth"/>) so that each instantiation keeps exactly 2k B registers and
/// runs exactly k FMAs per chain: each element of C is the chain over p = 0..k-1 in order from zero, then
/// <c>alpha·acc</c> or <c>fma(C, beta, alpha·acc)</c>, the bits of every other tile.
/// </remarks>
[SkipLocalsInit]
internal static unsafe class ShortDepthKernel
{
    /// <summary>Largest k: 2k B registers, 8 accumulators and a broadcast fit the 32 vector registers.</summary>
    public const int MaxDepth = 10;

    /// <summary>
    /// Rows 0..m-1 of C × <c>w</c> (1..32) columns; op(A)[i, p] at <c>a[i·rsA + p·csA]</c>, op(B)'s row p at
    /// <c>b + p·rsB</c> with 32 readable floats; <paramref name="k"/> from 1 to <see cref="MaxDepth"/>.
    /// </summary>
    public static void Multiply(int k, int m, float alpha, float* a, long rsA, long csA, float* b, long rsB,
        float beta, float* c, int ldc, int w)
    {
        // The store is a type too: with alpha 1 and beta 0 (every call from autograd) the accumulators go out as
        // they are (acc·1 is acc, bit for bit), and no store tests beta.
        if (beta != 0f) Depth<Update>(k, m, alpha, a, rsA, csA, b, rsB, beta, c, ldc, w);
        else if (alpha != 1f) Depth<Scaled>(k, m, alpha, a, rsA, csA, b, rsB, beta, c, ldc, w);
        else Depth<Plain>(k, m, alpha, a, rsA, csA, b, rsB, beta, c, ldc, w);
    }

    private static void Depth<TS>(int k, int m, float alpha, float* a, long rsA, long csA, float* b, long rsB,
        float beta, float* c, int ldc, int w) where TS : struct, IStoreMode
    {
        switch (k)
        {
            case 1: Rows<D1, TS>(m, alpha, a, rsA, csA, b, rsB, beta, c, ldc, w); break;
            case 2: Rows<D2, TS>(m, alpha, a, rsA, csA, b, rsB, beta, c, ldc, w); break;
            case 3: Rows<D3, TS>(m, alpha, a, rsA, csA, b, rsB, beta, c, ldc, w); break;
            case 4: Rows<D4, TS>(m, alpha, a, rsA, csA, b, rsB, beta, c, ldc, w); break;
            case 5: Rows<D5, TS>(m, alpha, a, rsA, csA, b, rsB, beta, c, ldc, w); break;
            case 6: Rows<D6, TS>(m, alpha, a, rsA, csA, b, rsB, beta, c, ldc, w); break;
            case 7: Rows<D7, TS>(m, alpha, a, rsA, csA, b, rsB, beta, c, ldc, w); break;
            case 8: Rows<D8, TS>(m, alpha, a, rsA, csA, b, rsB, beta, c, ldc, w); break;
            case 9: Rows<D9, TS>(m, alpha, a, rsA, csA, b, rsB, beta, c, ldc, w); break;
            case 10: Rows<D10, TS>(m, alpha, a, rsA, csA, b, rsB, beta, c, ldc, w); break;
            default: throw new ArgumentOutOfRangeException(nameof(k), k,
                $"ShortDepthKernel takes k from 1 to {MaxDepth}.");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows<TK, TS>(int m, float alpha, float* a, long rsA, long csA, float* b, long rsB,
        float beta, float* c, int ldc, int w) where TK : struct, IDepth where TS : struct, IStoreMode
    {
        int k = TK.K;
        const int V = NarrowKernels.V;
        Vector512<float> u0 = default, u1 = default, u2 = default, u3 = default, u4 = default, u5 = default,
            u6 = default, u7 = default, u8 = default, u9 = default;
        Vector512<float> v0 = default, v1 = default, v2 = default, v3 = default, v4 = default, v5 = default,
            v6 = default, v7 = default, v8 = default, v9 = default;
        { u0 = Vector512.Load(b + 0 * rsB); v0 = Vector512.Load(b + 0 * rsB + V); }
        if (k > 1) { u1 = Vector512.Load(b + 1 * rsB); v1 = Vector512.Load(b + 1 * rsB + V); }
        if (k > 2) { u2 = Vector512.Load(b + 2 * rsB); v2 = Vector512.Load(b + 2 * rsB + V); }
        if (k > 3) { u3 = Vector512.Load(b + 3 * rsB); v3 = Vector512.Load(b + 3 * rsB + V); }
        if (k > 4) { u4 = Vector512.Load(b + 4 * rsB); v4 = Vector512.Load(b + 4 * rsB + V); }
        if (k > 5) { u5 = Vector512.Load(b + 5 * rsB); v5 = Vector512.Load(b + 5 * rsB + V); }
        if (k > 6) { u6 = Vector512.Load(b + 6 * rsB); v6 = Vector512.Load(b + 6 * rsB + V); }
        if (k > 7) { u7 = Vector512.Load(b + 7 * rsB); v7 = Vector512.Load(b + 7 * rsB + V); }
        if (k > 8) { u8 = Vector512.Load(b + 8 * rsB); v8 = Vector512.Load(b + 8 * rsB + V); }
        if (k > 9) { u9 = Vector512.Load(b + 9 * rsB); v9 = Vector512.Load(b + 9 * rsB + V); }
        var va = Vector512.Create(alpha);
        var vb = Vector512.Create(beta);
        bool full = w == 2 * V;
        float* t = stackalloc float[4 * 2 * V];
        var m0 = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(w)).AsSingle();
        var m1 = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(w - V)).AsSingle();
        for (int i = 0; i < m; i += 4, a += 4 * rsA, c += 4L * ldc)
        {
            int rows = Math.Min(4, m - i);
            // Rows past m re-read row i and are dropped: four independent pairs of chains keep both FMA ports busy.
            float* l0 = a, l1 = rows > 1 ? a + rsA : a, l2 = rows > 2 ? a + 2 * rsA : a,
                l3 = rows > 3 ? a + 3 * rsA : a;
            Vector512<float> s, x0, y0, x1, y1, x2, y2, x3, y3;
            s = Vector512.Create(l0[0]); x0 = Vector512.FusedMultiplyAdd(s, u0, Vector512<float>.Zero);
            y0 = Vector512.FusedMultiplyAdd(s, v0, Vector512<float>.Zero);
            s = Vector512.Create(l1[0]); x1 = Vector512.FusedMultiplyAdd(s, u0, Vector512<float>.Zero);
            y1 = Vector512.FusedMultiplyAdd(s, v0, Vector512<float>.Zero);
            s = Vector512.Create(l2[0]); x2 = Vector512.FusedMultiplyAdd(s, u0, Vector512<float>.Zero);
            y2 = Vector512.FusedMultiplyAdd(s, v0, Vector512<float>.Zero);
            s = Vector512.Create(l3[0]); x3 = Vector512.FusedMultiplyAdd(s, u0, Vector512<float>.Zero);
            y3 = Vector512.FusedMultiplyAdd(s, v0, Vector512<float>.Zero);
            if (k > 1)
            {
                long o = 1 * csA;
                s = Vector512.Create(l0[o]); x0 = Vector512.FusedMultiplyAdd(s, u1, x0);
                y0 = Vector512.FusedMultiplyAdd(s, v1, y0);
                s = Vector512.Create(l1[o]); x1 = Vector512.FusedMultiplyAdd(s, u1, x1);
                y1 = Vector512.FusedMultiplyAdd(s, v1, y1);
                s = Vector512.Create(l2[o]); x2 = Vector512.FusedMultiplyAdd(s, u1, x2);
                y2 = Vector512.FusedMultiplyAdd(s, v1, y2);
                s = Vector512.Create(l3[o]); x3 = Vector512.FusedMultiplyAdd(s, u1, x3);
                y3 = Vector512.FusedMultiplyAdd(s, v1, y3);
            }
            if (k > 2)
            {
                long o = 2 * csA;
                s = Vector512.Create(l0[o]); x0 = Vector512.FusedMultiplyAdd(s, u2, x0);
                y0 = Vector512.FusedMultiplyAdd(s, v2, y0);
                s = Vector512.Create(l1[o]); x1 = Vector512.FusedMultiplyAdd(s, u2, x1);
                y1 = Vector512.FusedMultiplyAdd(s, v2, y1);
                s = Vector512.Create(l2[o]); x2 = Vector512.FusedMultiplyAdd(s, u2, x2);
                y2 = Vector512.FusedMultiplyAdd(s, v2, y2);
                s = Vector512.Create(l3[o]); x3 = Vector512.FusedMultiplyAdd(s, u2, x3);
                y3 = Vector512.FusedMultiplyAdd(s, v2, y3);
            }
            if (k > 3)
            {
                long o = 3 * csA;
                s = Vector512.Create(l0[o]); x0 = Vector512.FusedMultiplyAdd(s, u3, x0);
                y0 = Vector512.FusedMultiplyAdd(s, v3, y0);
                s = Vector512.Create(l1[o]); x1 = Vector512.FusedMultiplyAdd(s, u3, x1);
                y1 = Vector512.FusedMultiplyAdd(s, v3, y1);
                s = Vector512.Create(l2[o]); x2 = Vector512.FusedMultiplyAdd(s, u3, x2);
                y2 = Vector512.FusedMultiplyAdd(s, v3, y2);
                s = Vector512.Create(l3[o]); x3 = Vector512.FusedMultiplyAdd(s, u3, x3);
                y3 = Vector512.FusedMultiplyAdd(s, v3, y3);
            }
            if (k > 4)
            {
                long o = 4 * csA;
                s = Vector512.Create(l0[o]); x0 = Vector512.FusedMultiplyAdd(s, u4, x0);
                y0 = Vector512.FusedMultiplyAdd(s, v4, y0);
                s = Vector512.Create(l1[o]); x1 = Vector512.FusedMultiplyAdd(s, u4, x1);
                y1 = Vector512.FusedMultiplyAdd(s, v4, y1);
                s = Vector512.Create(l2[o]); x2 = Vector512.FusedMultiplyAdd(s, u4, x2);
                y2 = Vector512.FusedMultiplyAdd(s, v4, y2);
                s = Vector512.Create(l3[o]); x3 = Vector512.FusedMultiplyAdd(s, u4, x3);
                y3 = Vector512.FusedMultiplyAdd(s, v4, y3);
            }
            if (k > 5)
            {
                long o = 5 * csA;
                s = Vector512.Create(l0[o]); x0 = Vector512.FusedMultiplyAdd(s, u5, x0);
                y0 = Vector512.FusedMultiplyAdd(s, v5, y0);
                s = Vector512.Create(l1[o]); x1 = Vector512.FusedMultiplyAdd(s, u5, x1);
                y1 = Vector512.FusedMultiplyAdd(s, v5, y1);
                s = Vector512.Create(l2[o]); x2 = Vector512.FusedMultiplyAdd(s, u5, x2);
                y2 = Vector512.FusedMultiplyAdd(s, v5, y2);
                s = Vector512.Create(l3[o]); x3 = Vector512.FusedMultiplyAdd(s, u5, x3);
                y3 = Vector512.FusedMultiplyAdd(s, v5, y3);
            }
            if (k > 6)
            {
                long o = 6 * csA;
                s = Vector512.Create(l0[o]); x0 = Vector512.FusedMultiplyAdd(s, u6, x0);
                y0 = Vector512.FusedMultiplyAdd(s, v6, y0);
                s = Vector512.Create(l1[o]); x1 = Vector512.FusedMultiplyAdd(s, u6, x1);
                y1 = Vector512.FusedMultiplyAdd(s, v6, y1);
                s = Vector512.Create(l2[o]); x2 = Vector512.FusedMultiplyAdd(s, u6, x2);
                y2 = Vector512.FusedMultiplyAdd(s, v6, y2);
                s = Vector512.Create(l3[o]); x3 = Vector512.FusedMultiplyAdd(s, u6, x3);
                y3 = Vector512.FusedMultiplyAdd(s, v6, y3);
            }
            if (k > 7)
            {
                long o = 7 * csA;
                s = Vector512.Create(l0[o]); x0 = Vector512.FusedMultiplyAdd(s, u7, x0);
                y0 = Vector512.FusedMultiplyAdd(s, v7, y0);
                s = Vector512.Create(l1[o]); x1 = Vector512.FusedMultiplyAdd(s, u7, x1);
                y1 = Vector512.FusedMultiplyAdd(s, v7, y1);
                s = Vector512.Create(l2[o]); x2 = Vector512.FusedMultiplyAdd(s, u7, x2);
                y2 = Vector512.FusedMultiplyAdd(s, v7, y2);
                s = Vector512.Create(l3[o]); x3 = Vector512.FusedMultiplyAdd(s, u7, x3);
                y3 = Vector512.FusedMultiplyAdd(s, v7, y3);
            }
            if (k > 8)
            {
                long o = 8 * csA;
                s = Vector512.Create(l0[o]); x0 = Vector512.FusedMultiplyAdd(s, u8, x0);
                y0 = Vector512.FusedMultiplyAdd(s, v8, y0);
                s = Vector512.Create(l1[o]); x1 = Vector512.FusedMultiplyAdd(s, u8, x1);
                y1 = Vector512.FusedMultiplyAdd(s, v8, y1);
                s = Vector512.Create(l2[o]); x2 = Vector512.FusedMultiplyAdd(s, u8, x2);
                y2 = Vector512.FusedMultiplyAdd(s, v8, y2);
                s = Vector512.Create(l3[o]); x3 = Vector512.FusedMultiplyAdd(s, u8, x3);
                y3 = Vector512.FusedMultiplyAdd(s, v8, y3);
            }
            if (k > 9)
            {
                long o = 9 * csA;
                s = Vector512.Create(l0[o]); x0 = Vector512.FusedMultiplyAdd(s, u9, x0);
                y0 = Vector512.FusedMultiplyAdd(s, v9, y0);
                s = Vector512.Create(l1[o]); x1 = Vector512.FusedMultiplyAdd(s, u9, x1);
                y1 = Vector512.FusedMultiplyAdd(s, v9, y1);
                s = Vector512.Create(l2[o]); x2 = Vector512.FusedMultiplyAdd(s, u9, x2);
                y2 = Vector512.FusedMultiplyAdd(s, v9, y2);
                s = Vector512.Create(l3[o]); x3 = Vector512.FusedMultiplyAdd(s, u9, x3);
                y3 = Vector512.FusedMultiplyAdd(s, v9, y3);
            }
            if (rows == 4 && full)
            {
                Store<TS>(c, x0, va, vb); Store<TS>(c + V, y0, va, vb);
                Store<TS>(c + ldc, x1, va, vb); Store<TS>(c + ldc + V, y1, va, vb);
                Store<TS>(c + 2L * ldc, x2, va, vb); Store<TS>(c + 2L * ldc + V, y2, va, vb);
                Store<TS>(c + 3L * ldc, x3, va, vb); Store<TS>(c + 3L * ldc + V, y3, va, vb);
                continue;
            }
            if (rows == 4)
            {
                // The first or last block of a row of C (see NarrowGemm.ShortDepth): masked stores, no stack tile.
                StoreMasked<TS>(c, x0, m0, va, vb); StoreMasked<TS>(c + V, y0, m1, va, vb);
                StoreMasked<TS>(c + ldc, x1, m0, va, vb); StoreMasked<TS>(c + ldc + V, y1, m1, va, vb);
                StoreMasked<TS>(c + 2L * ldc, x2, m0, va, vb); StoreMasked<TS>(c + 2L * ldc + V, y2, m1, va, vb);
                StoreMasked<TS>(c + 3L * ldc, x3, m0, va, vb); StoreMasked<TS>(c + 3L * ldc + V, y3, m1, va, vb);
                continue;
            }
            x0.Store(t); y0.Store(t + V); x1.Store(t + 2 * V); y1.Store(t + 3 * V);
            x2.Store(t + 4 * V); y2.Store(t + 5 * V); x3.Store(t + 6 * V); y3.Store(t + 7 * V);
            NarrowKernels.StoreEdge(t, 2 * V, rows, c, ldc, w, alpha, beta);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store<TS>(float* c, Vector512<float> acc, Vector512<float> alpha, Vector512<float> beta)
        where TS : struct, IStoreMode
    {
        if (TS.Mode == 0) acc.Store(c);
        else if (TS.Mode == 1) (acc * alpha).Store(c);
        else Vector512.FusedMultiplyAdd(Vector512.Load(c), beta, acc * alpha).Store(c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreMasked<TS>(float* c, Vector512<float> acc, Vector512<float> mask, Vector512<float> alpha,
        Vector512<float> beta)
        where TS : struct, IStoreMode
    {
        if (TS.Mode == 0) Avx512F.MaskStore(c, mask, acc);
        else if (TS.Mode == 1) Avx512F.MaskStore(c, mask, acc * alpha);
        else
            Avx512F.MaskStore(c, mask,
                Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(c, mask, default), beta, acc * alpha));
    }

    /// <summary>How a tile is written: 0 as it is (alpha 1, beta 0), 1 <c>alpha·acc</c>, 2 <c>fma(C, beta,
    /// alpha·acc)</c>.</summary>
    private interface IStoreMode { static abstract int Mode { get; } }
    private struct Plain : IStoreMode { public static int Mode => 0; }
    private struct Scaled : IStoreMode { public static int Mode => 1; }
    private struct Update : IStoreMode { public static int Mode => 2; }

    /// <summary>The depth k as a type, so each <see cref="Rows{TK, TS}"/> is compiled for its own k.</summary>
    private interface IDepth { static abstract int K { get; } }
    private struct D1 : IDepth { public static int K => 1; }
    private struct D2 : IDepth { public static int K => 2; }
    private struct D3 : IDepth { public static int K => 3; }
    private struct D4 : IDepth { public static int K => 4; }
    private struct D5 : IDepth { public static int K => 5; }
    private struct D6 : IDepth { public static int K => 6; }
    private struct D7 : IDepth { public static int K => 7; }
    private struct D8 : IDepth { public static int K => 8; }
    private struct D9 : IDepth { public static int K => 9; }
    private struct D10 : IDepth { public static int K => 10; }
}
