using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LoRA.Managed.Kernels;

/// <summary>
/// The register-blocked micro-kernels of <see cref="Gemm"/>. Each computes one MR×NR tile of
/// <c>C = alpha·Ã·B̃ + beta·C</c> from packed panels (see <see cref="Packing"/>): per step of p it loads NR
/// values of B̃ into vector registers, broadcasts each of the MR values of Ã, and accumulates with fused
/// multiply-adds. Tiles at the right or bottom edge of C go through a small buffer so that only the
/// valid mr×nr corner is written.
/// </summary>
/// <remarks>
/// <see cref="SkipLocalsInitAttribute"/>: the edge buffer is fully written before it is read, so the
/// runtime's zeroing of each <c>stackalloc</c> would be wasted work on every edge tile.
/// </remarks>
[SkipLocalsInit]
internal static unsafe class MicroKernels
{
    /// <summary>The 8×32 AVX-512 micro-kernel: 16 accumulators of 16 floats stay in registers for the whole kc
    /// loop.</summary>
    public static void Kernel8x32(int kc, float* pa, float* pb, float* c, int ldc, int mr, int nr, float alpha,
        float beta)
    {
        Vector512<float> c00 = Vector512<float>.Zero, c01 = Vector512<float>.Zero;
        Vector512<float> c10 = Vector512<float>.Zero, c11 = Vector512<float>.Zero;
        Vector512<float> c20 = Vector512<float>.Zero, c21 = Vector512<float>.Zero;
        Vector512<float> c30 = Vector512<float>.Zero, c31 = Vector512<float>.Zero;
        Vector512<float> c40 = Vector512<float>.Zero, c41 = Vector512<float>.Zero;
        Vector512<float> c50 = Vector512<float>.Zero, c51 = Vector512<float>.Zero;
        Vector512<float> c60 = Vector512<float>.Zero, c61 = Vector512<float>.Zero;
        Vector512<float> c70 = Vector512<float>.Zero, c71 = Vector512<float>.Zero;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(pb), b1 = Vector512.Load(pb + 16);
            Vector512<float> a0 = Vector512.Create(pa[0]);
            c00 = Vector512.FusedMultiplyAdd(a0, b0, c00); c01 = Vector512.FusedMultiplyAdd(a0, b1, c01);
            Vector512<float> a1 = Vector512.Create(pa[1]);
            c10 = Vector512.FusedMultiplyAdd(a1, b0, c10); c11 = Vector512.FusedMultiplyAdd(a1, b1, c11);
            Vector512<float> a2 = Vector512.Create(pa[2]);
            c20 = Vector512.FusedMultiplyAdd(a2, b0, c20); c21 = Vector512.FusedMultiplyAdd(a2, b1, c21);
            Vector512<float> a3 = Vector512.Create(pa[3]);
            c30 = Vector512.FusedMultiplyAdd(a3, b0, c30); c31 = Vector512.FusedMultiplyAdd(a3, b1, c31);
            Vector512<float> a4 = Vector512.Create(pa[4]);
            c40 = Vector512.FusedMultiplyAdd(a4, b0, c40); c41 = Vector512.FusedMultiplyAdd(a4, b1, c41);
            Vector512<float> a5 = Vector512.Create(pa[5]);
            c50 = Vector512.FusedMultiplyAdd(a5, b0, c50); c51 = Vector512.FusedMultiplyAdd(a5, b1, c51);
            Vector512<float> a6 = Vector512.Create(pa[6]);
            c60 = Vector512.FusedMultiplyAdd(a6, b0, c60); c61 = Vector512.FusedMultiplyAdd(a6, b1, c61);
            Vector512<float> a7 = Vector512.Create(pa[7]);
            c70 = Vector512.FusedMultiplyAdd(a7, b0, c70); c71 = Vector512.FusedMultiplyAdd(a7, b1, c71);
            pa += 8; pb += 32;
        }
        if (mr == 8 && nr == 32)
        {
            Store512(c + 0 * ldc, c00, c01, alpha, beta);
            Store512(c + 1 * ldc, c10, c11, alpha, beta);
            Store512(c + 2 * ldc, c20, c21, alpha, beta);
            Store512(c + 3 * ldc, c30, c31, alpha, beta);
            Store512(c + 4 * ldc, c40, c41, alpha, beta);
            Store512(c + 5 * ldc, c50, c51, alpha, beta);
            Store512(c + 6 * ldc, c60, c61, alpha, beta);
            Store512(c + 7 * ldc, c70, c71, alpha, beta);
            return;
        }
        float* tile = stackalloc float[8 * 32];
        c00.Store(tile + 0); c01.Store(tile + 16);
        c10.Store(tile + 32); c11.Store(tile + 48);
        c20.Store(tile + 64); c21.Store(tile + 80);
        c30.Store(tile + 96); c31.Store(tile + 112);
        c40.Store(tile + 128); c41.Store(tile + 144);
        c50.Store(tile + 160); c51.Store(tile + 176);
        c60.Store(tile + 192); c61.Store(tile + 208);
        c70.Store(tile + 224); c71.Store(tile + 240);
        StoreEdge(tile, 32, c, ldc, mr, nr, alpha, beta);
    }

    /// <summary>The 6×16 AVX2 micro-kernel: 12 accumulators of 8 floats stay in registers for the whole kc
    /// loop.</summary>
    public static void Kernel6x16(int kc, float* pa, float* pb, float* c, int ldc, int mr, int nr, float alpha,
        float beta)
    {
        Vector256<float> c00 = Vector256<float>.Zero, c01 = Vector256<float>.Zero;
        Vector256<float> c10 = Vector256<float>.Zero, c11 = Vector256<float>.Zero;
        Vector256<float> c20 = Vector256<float>.Zero, c21 = Vector256<float>.Zero;
        Vector256<float> c30 = Vector256<float>.Zero, c31 = Vector256<float>.Zero;
        Vector256<float> c40 = Vector256<float>.Zero, c41 = Vector256<float>.Zero;
        Vector256<float> c50 = Vector256<float>.Zero, c51 = Vector256<float>.Zero;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(pb), b1 = Vector256.Load(pb + 8);
            Vector256<float> a0 = Vector256.Create(pa[0]);
            c00 = Vector256.FusedMultiplyAdd(a0, b0, c00); c01 = Vector256.FusedMultiplyAdd(a0, b1, c01);
            Vector256<float> a1 = Vector256.Create(pa[1]);
            c10 = Vector256.FusedMultiplyAdd(a1, b0, c10); c11 = Vector256.FusedMultiplyAdd(a1, b1, c11);
            Vector256<float> a2 = Vector256.Create(pa[2]);
            c20 = Vector256.FusedMultiplyAdd(a2, b0, c20); c21 = Vector256.FusedMultiplyAdd(a2, b1, c21);
            Vector256<float> a3 = Vector256.Create(pa[3]);
            c30 = Vector256.FusedMultiplyAdd(a3, b0, c30); c31 = Vector256.FusedMultiplyAdd(a3, b1, c31);
            Vector256<float> a4 = Vector256.Create(pa[4]);
            c40 = Vector256.FusedMultiplyAdd(a4, b0, c40); c41 = Vector256.FusedMultiplyAdd(a4, b1, c41);
            Vector256<float> a5 = Vector256.Create(pa[5]);
            c50 = Vector256.FusedMultiplyAdd(a5, b0, c50); c51 = Vector256.FusedMultiplyAdd(a5, b1, c51);
            pa += 6; pb += 16;
        }
        if (mr == 6 && nr == 16)
        {
            Store256(c + 0 * ldc, c00, c01, alpha, beta);
            Store256(c + 1 * ldc, c10, c11, alpha, beta);
            Store256(c + 2 * ldc, c20, c21, alpha, beta);
            Store256(c + 3 * ldc, c30, c31, alpha, beta);
            Store256(c + 4 * ldc, c40, c41, alpha, beta);
            Store256(c + 5 * ldc, c50, c51, alpha, beta);
            return;
        }
        float* tile = stackalloc float[6 * 16];
        c00.Store(tile + 0); c01.Store(tile + 8);
        c10.Store(tile + 16); c11.Store(tile + 24);
        c20.Store(tile + 32); c21.Store(tile + 40);
        c30.Store(tile + 48); c31.Store(tile + 56);
        c40.Store(tile + 64); c41.Store(tile + 72);
        c50.Store(tile + 80); c51.Store(tile + 88);
        StoreEdge(tile, 16, c, ldc, mr, nr, alpha, beta);
    }

    /// <summary>
    /// The portable fallback for machines without 256-bit SIMD: same tile, scalar loops. Each step is a fused
    /// multiply-add (<see cref="MathF.FusedMultiplyAdd"/>), as in the vector kernels: a separate multiply and add
    /// rounds twice and gave other bits on most elements.
    /// </summary>
    public static void KernelScalar(int kc, float* pa, float* pb, float* c, int ldc, int mr, int nr, int MR, int NR,
        float alpha, float beta)
    {
        float* tile = stackalloc float[MR * NR];
        new Span<float>(tile, MR * NR).Clear();
        for (int p = 0; p < kc; p++)
        {
            for (int i = 0; i < MR; i++)
            {
                float av = pa[i];
                for (int j = 0; j < NR; j++) tile[i * NR + j] = MathF.FusedMultiplyAdd(av, pb[j], tile[i * NR + j]);
            }
            pa += MR; pb += NR;
        }
        StoreEdge(tile, NR, c, ldc, mr, nr, alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store512(float* dst, Vector512<float> acc0, Vector512<float> acc1, float alpha, float beta)
    {
        Vector512<float> va = Vector512.Create(alpha);
        if (beta == 0f)
        {
            (acc0 * va).Store(dst);
            (acc1 * va).Store(dst + 16);
        }
        else
        {
            Vector512<float> vb = Vector512.Create(beta);
            Vector512.FusedMultiplyAdd(Vector512.Load(dst), vb, acc0 * va).Store(dst);
            Vector512.FusedMultiplyAdd(Vector512.Load(dst + 16), vb, acc1 * va).Store(dst + 16);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store256(float* dst, Vector256<float> acc0, Vector256<float> acc1, float alpha, float beta)
    {
        Vector256<float> va = Vector256.Create(alpha);
        if (beta == 0f)
        {
            (acc0 * va).Store(dst);
            (acc1 * va).Store(dst + 8);
        }
        else
        {
            Vector256<float> vb = Vector256.Create(beta);
            Vector256.FusedMultiplyAdd(Vector256.Load(dst), vb, acc0 * va).Store(dst);
            Vector256.FusedMultiplyAdd(Vector256.Load(dst + 8), vb, acc1 * va).Store(dst + 8);
        }
    }

    /// <summary>Writes the valid mr×nr corner of a tile held in a buffer with row stride
    /// <paramref name="stride"/>.</summary>
    private static void StoreEdge(float* tile, int stride, float* c, int ldc, int mr, int nr, float alpha, float beta)
    {
        for (int i = 0; i < mr; i++)
        {
            float* row = c + (long)i * ldc;
            float* t = tile + i * stride;
            if (beta == 0f) for (int j = 0; j < nr; j++) row[j] = alpha * t[j];
            else for (int j = 0; j < nr; j++) row[j] = MathF.FusedMultiplyAdd(row[j], beta, alpha * t[j]);
        }
    }
}
