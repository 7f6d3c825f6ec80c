using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LoRA.Managed.Kernels;

/// <summary>
/// Sixteen full rows × one <see cref="Vector512{T}"/> of columns for <see cref="NarrowGemm"/>: the 16-column products
/// of attention (P·V and three of its four gradients, 64×64·64×16 per head). <see cref="NarrowKernels.Rows8x16"/> keeps
/// eight chains, exactly the FMA latency (4 cycles) times its two ports, so any stall idles a port; sixteen chains
/// share each load of op(B) and leave slack.
/// </summary>
/// <remarks>
/// Each element of C is the same chain as in every other tile (FMAs over p in increasing order from zero, then
/// <c>alpha·acc</c> or <c>fma(C, beta, alpha·acc)</c>), so the bits do not change. Rows 8..15 are addressed as rows
/// 0..7 plus eight row strides, which keeps eight row pointers and two offsets in registers instead of sixteen.
/// </remarks>
[SkipLocalsInit]
internal static unsafe class SixteenRowKernel
{
    /// <summary>
    /// Sixteen rows × <c>w</c> (1..16) columns: A's row i at <c>l + i·rsL</c>, its step p at <c>p·csL</c>; op(B)'s
    /// row p at <c>b + p·rsB</c>, 16 readable floats each.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Rows16x16(int k, float alpha, float* l, long rsL, long csL, float* b, long rsB, float beta,
        float* c, int ldc, int w)
    {
        const int V = NarrowKernels.V;
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default,
            c6 = default, c7 = default, d0 = default, d1 = default, d2 = default, d3 = default, d4 = default,
            d5 = default, d6 = default, d7 = default;
        float* l0 = l, l1 = l + rsL, l2 = l + 2 * rsL, l3 = l + 3 * rsL, l4 = l + 4 * rsL, l5 = l + 5 * rsL,
            l6 = l + 6 * rsL, l7 = l + 7 * rsL;
        long o = 0, h = 8 * rsL;
        for (int p = 0; p < k; p++, o += csL, b += rsB)
        {
            var bv = Vector512.Load(b);
            long q = o + h;
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(l0[o]), bv, c0);
            d0 = Vector512.FusedMultiplyAdd(Vector512.Create(l0[q]), bv, d0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(l1[o]), bv, c1);
            d1 = Vector512.FusedMultiplyAdd(Vector512.Create(l1[q]), bv, d1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(l2[o]), bv, c2);
            d2 = Vector512.FusedMultiplyAdd(Vector512.Create(l2[q]), bv, d2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(l3[o]), bv, c3);
            d3 = Vector512.FusedMultiplyAdd(Vector512.Create(l3[q]), bv, d3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(l4[o]), bv, c4);
            d4 = Vector512.FusedMultiplyAdd(Vector512.Create(l4[q]), bv, d4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(l5[o]), bv, c5);
            d5 = Vector512.FusedMultiplyAdd(Vector512.Create(l5[q]), bv, d5);
            c6 = Vector512.FusedMultiplyAdd(Vector512.Create(l6[o]), bv, c6);
            d6 = Vector512.FusedMultiplyAdd(Vector512.Create(l6[q]), bv, d6);
            c7 = Vector512.FusedMultiplyAdd(Vector512.Create(l7[o]), bv, c7);
            d7 = Vector512.FusedMultiplyAdd(Vector512.Create(l7[q]), bv, d7);
        }
        if (w == V)
        {
            Store(c, c0, alpha, beta); Store(c + ldc, c1, alpha, beta);
            Store(c + 2L * ldc, c2, alpha, beta); Store(c + 3L * ldc, c3, alpha, beta);
            Store(c + 4L * ldc, c4, alpha, beta); Store(c + 5L * ldc, c5, alpha, beta);
            Store(c + 6L * ldc, c6, alpha, beta); Store(c + 7L * ldc, c7, alpha, beta);
            float* e = c + 8L * ldc;
            Store(e, d0, alpha, beta); Store(e + ldc, d1, alpha, beta);
            Store(e + 2L * ldc, d2, alpha, beta); Store(e + 3L * ldc, d3, alpha, beta);
            Store(e + 4L * ldc, d4, alpha, beta); Store(e + 5L * ldc, d5, alpha, beta);
            Store(e + 6L * ldc, d6, alpha, beta); Store(e + 7L * ldc, d7, alpha, beta);
            return;
        }
        float* t = stackalloc float[16 * V];
        c0.Store(t); c1.Store(t + V); c2.Store(t + 2 * V); c3.Store(t + 3 * V);
        c4.Store(t + 4 * V); c5.Store(t + 5 * V); c6.Store(t + 6 * V); c7.Store(t + 7 * V);
        d0.Store(t + 8 * V); d1.Store(t + 9 * V); d2.Store(t + 10 * V); d3.Store(t + 11 * V);
        d4.Store(t + 12 * V); d5.Store(t + 13 * V); d6.Store(t + 14 * V); d7.Store(t + 15 * V);
        NarrowKernels.StoreEdge(t, V, 16, c, ldc, w, alpha, beta);
    }

    /// <summary>The store of <see cref="NarrowKernels"/>: <c>alpha·acc</c>, or
    /// <c>fma(C, beta, alpha·acc)</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector512<float> acc, float alpha, float beta)
    {
        var scaled = acc * Vector512.Create(alpha);
        (beta == 0f ? scaled : Vector512.FusedMultiplyAdd(Vector512.Load(c), Vector512.Create(beta), scaled)).Store(c);
    }
}
