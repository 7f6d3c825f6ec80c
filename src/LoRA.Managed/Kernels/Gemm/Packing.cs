using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoRA.Managed.Kernels;

/// <summary>
/// Copies blocks of A and B into the contiguous panel layout the micro-kernel streams through.
/// Transposes happen here, once per block, instead of in a separate pass over the whole matrix.
/// </summary>
/// <remarks>
/// A block (mc×kc) is stored as ⌈mc/MR⌉ panels; panel r holds rows r·MR..r·MR+MR−1 as
/// <c>packed[r·MR·kc + p·MR + i]</c>, so the kernel reads MR values of A per step of p.
/// A block of B (kc×nc) is stored as ⌈nc/NR⌉ panels, <c>packed[j0·kc + p·NR + j]</c>, NR values of B
/// per step of p. Panels at the edges are padded with zeros so the kernel always runs full tiles.
/// <see cref="SkipLocalsInitAttribute"/>: the transpose buffer is fully written before it is read.
/// </remarks>
[SkipLocalsInit]
internal static unsafe class Packing
{
    /// <summary>Packs op(A)[ic..ic+mc, pc..pc+kc] into MR-row panels.</summary>
    public static void PackA(bool transA, float* a, int lda, int ic, int pc, int mc, int kc, int mr, float* dst)
    {
        int ir0 = 0;
        if (!transA && mr == 8 && Avx512F.IsSupported)
        {
            // op(A)[i, p] = a[i·lda + p] into 8-row panels: sixteen rows (two panels) are turned round 16×16
            // at a time in registers, then each half of a transposed row is one panel's step of p. The strided
            // scalar stores this replaces took as long as a tenth of the 64×256·256×512 product.
            float* tmp = stackalloc float[16 * 16];
            for (; ir0 + 16 <= mc; ir0 += 16)
            {
                float* rows = a + (long)(ic + ir0) * lda + pc;
                float* panel0 = dst + ir0 * kc, panel1 = panel0 + 8 * kc;
                int p0 = 0;
                for (; p0 + 16 <= kc; p0 += 16)
                {
                    Transpose16x16(rows + p0, lda, tmp, 16);
                    for (int t = 0; t < 16; t++)
                    {
                        Vector256.Load(tmp + t * 16).Store(panel0 + (p0 + t) * 8);
                        Vector256.Load(tmp + t * 16 + 8).Store(panel1 + (p0 + t) * 8);
                    }
                }
                for (int p = p0; p < kc; p++)
                    for (int i = 0; i < 8; i++)
                    {
                        panel0[p * 8 + i] = rows[(long)i * lda + p];
                        panel1[p * 8 + i] = rows[(long)(i + 8) * lda + p];
                    }
            }
        }
        for (int ir = ir0; ir < mc; ir += mr)
        {
            int rows = Math.Min(mr, mc - ir);
            float* panel = dst + ir * kc;
            if (transA)
            {
                // op(A)[i, p] = a[p·lda + i]: for each p the panel's MR values are contiguous in memory.
                if (rows == 8 && mr == 8 && Vector256.IsHardwareAccelerated)
                {
                    float* src = a + (long)pc * lda + ic + ir;
                    for (int p = 0; p < kc; p++, src += lda) Vector256.Load(src).Store(panel + p * 8);
                    continue;
                }
                for (int p = 0; p < kc; p++)
                {
                    float* src = a + (long)(pc + p) * lda + ic + ir;
                    float* d = panel + p * mr;
                    int i = 0;
                    for (; i < rows; i++) d[i] = src[i];
                    for (; i < mr; i++) d[i] = 0f;
                }
            }
            else
            {
                // op(A)[i, p] = a[i·lda + p]: read each row contiguously, write with stride MR.
                for (int i = 0; i < rows; i++)
                {
                    float* src = a + (long)(ic + ir + i) * lda + pc;
                    float* d = panel + i;
                    for (int p = 0; p < kc; p++) d[p * mr] = src[p];
                }
                for (int i = rows; i < mr; i++)
                {
                    float* d = panel + i;
                    for (int p = 0; p < kc; p++) d[p * mr] = 0f;
                }
            }
        }
    }

    /// <summary>Packs op(B)[pc..pc+kc, jc..jc+nc] into NR-column panels.</summary>
    public static void PackB(bool transB, float* b, int ldb, int pc, int jc, int kc, int nc, int nr, float* dst)
    {
        for (int jr = 0; jr < nc; jr += nr)
        {
            int cols = Math.Min(nr, nc - jr);
            float* panel = dst + jr * kc;
            if (transB)
            {
                // op(B)[p, j] = b[j·ldb + p]. A full 32-wide panel is transposed 16×16 blocks at a time in
                // registers; the rest (and the last kc mod 16 steps) by the scalar loop below.
                int p0 = 0;
                if (cols == nr && nr == 32 && Avx512F.IsSupported)
                {
                    float* rows = b + (long)(jc + jr) * ldb + pc;
                    for (; p0 + 16 <= kc; p0 += 16)
                    {
                        Transpose16x16(rows + p0, ldb, panel + p0 * 32, 32);
                        Transpose16x16(rows + 16L * ldb + p0, ldb, panel + p0 * 32 + 16, 32);
                    }
                }
                if (p0 == kc) continue;
                // op(B)[p, j] = b[j·ldb + p]: read each stored row (a column of op(B)) contiguously.
                for (int j = 0; j < cols; j++)
                {
                    float* src = b + (long)(jc + jr + j) * ldb + pc;
                    float* d = panel + j;
                    for (int p = p0; p < kc; p++) d[p * nr] = src[p];
                }
                for (int j = cols; j < nr; j++)
                {
                    float* d = panel + j;
                    for (int p = p0; p < kc; p++) d[p * nr] = 0f;
                }
            }
            else
            {
                // op(B)[p, j] = b[p·ldb + j]: each step of p copies NR contiguous values. A full 32-wide panel
                // is two vector copies per row, not a Span.CopyTo call per 128 bytes (measured in docs/07), where
                // B is packed one panel at a time right before its use.
                if (cols == nr && nr == 32 && Vector512.IsHardwareAccelerated)
                {
                    float* src = b + (long)pc * ldb + jc + jr;
                    for (int p = 0; p < kc; p++, src += ldb)
                    {
                        Vector512.Load(src).Store(panel + p * 32);
                        Vector512.Load(src + 16).Store(panel + p * 32 + 16);
                    }
                    continue;
                }
                for (int p = 0; p < kc; p++)
                {
                    float* src = b + (long)(pc + p) * ldb + jc + jr;
                    float* d = panel + p * nr;
                    if (cols == nr)
                    {
                        new ReadOnlySpan<float>(src, nr).CopyTo(new Span<float>(d, nr));
                    }
                    else
                    {
                        int j = 0;
                        for (; j < cols; j++) d[j] = src[j];
                        for (; j < nr; j++) d[j] = 0f;
                    }
                }
            }
        }
    }

    /// <summary>
    /// Writes the transpose of a 16×16 block: <c>dst[t·dstStride + j] = src[j·srcStride + t]</c>. Sixteen rows
    /// are loaded and transposed in registers in four shuffle stages (interleave 32-bit pairs, then 64-bit
    /// pairs, then 128-bit lanes twice), the standard AVX-512 in-register transpose; about a quarter of a
    /// shuffle per element instead of one strided scalar store each.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose16x16(float* src, int srcStride, float* dst, int dstStride) =>
        Transpose16x16(src, srcStride, 16, dst, dstStride);

    /// <summary>
    /// The same transpose when only the first <paramref name="rows"/> rows of the source exist (1..16): the
    /// missing rows read as zeros, so <c>dst</c> gets 16 columns with zeros from column <paramref name="rows"/>
    /// on, and nothing past the last source row is read. <see cref="NarrowGemm"/> builds its zero-padded strips
    /// of a transposed op(B) with 10 columns this way.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose16x16(float* src, long srcStride, int rows, float* dst, int dstStride)
    {
        Vector512<float> r0 = Vector512.Load(src);
        Vector512<float> r1 = rows > 1 ? Vector512.Load(src + srcStride) : default;
        Vector512<float> r2 = rows > 2 ? Vector512.Load(src + 2 * srcStride) : default;
        Vector512<float> r3 = rows > 3 ? Vector512.Load(src + 3 * srcStride) : default;
        Vector512<float> r4 = rows > 4 ? Vector512.Load(src + 4 * srcStride) : default;
        Vector512<float> r5 = rows > 5 ? Vector512.Load(src + 5 * srcStride) : default;
        Vector512<float> r6 = rows > 6 ? Vector512.Load(src + 6 * srcStride) : default;
        Vector512<float> r7 = rows > 7 ? Vector512.Load(src + 7 * srcStride) : default;
        Vector512<float> r8 = rows > 8 ? Vector512.Load(src + 8 * srcStride) : default;
        Vector512<float> r9 = rows > 9 ? Vector512.Load(src + 9 * srcStride) : default;
        Vector512<float> r10 = rows > 10 ? Vector512.Load(src + 10 * srcStride) : default;
        Vector512<float> r11 = rows > 11 ? Vector512.Load(src + 11 * srcStride) : default;
        Vector512<float> r12 = rows > 12 ? Vector512.Load(src + 12 * srcStride) : default;
        Vector512<float> r13 = rows > 13 ? Vector512.Load(src + 13 * srcStride) : default;
        Vector512<float> r14 = rows > 14 ? Vector512.Load(src + 14 * srcStride) : default;
        Vector512<float> r15 = rows > 15 ? Vector512.Load(src + 15 * srcStride) : default;

        // Stage 1: interleave 32-bit elements of row pairs.
        Vector512<float> t0 = Avx512F.UnpackLow(r0, r1), t1 = Avx512F.UnpackHigh(r0, r1);
        Vector512<float> t2 = Avx512F.UnpackLow(r2, r3), t3 = Avx512F.UnpackHigh(r2, r3);
        Vector512<float> t4 = Avx512F.UnpackLow(r4, r5), t5 = Avx512F.UnpackHigh(r4, r5);
        Vector512<float> t6 = Avx512F.UnpackLow(r6, r7), t7 = Avx512F.UnpackHigh(r6, r7);
        Vector512<float> t8 = Avx512F.UnpackLow(r8, r9), t9 = Avx512F.UnpackHigh(r8, r9);
        Vector512<float> t10 = Avx512F.UnpackLow(r10, r11), t11 = Avx512F.UnpackHigh(r10, r11);
        Vector512<float> t12 = Avx512F.UnpackLow(r12, r13), t13 = Avx512F.UnpackHigh(r12, r13);
        Vector512<float> t14 = Avx512F.UnpackLow(r14, r15), t15 = Avx512F.UnpackHigh(r14, r15);

        // Stage 2: interleave 64-bit pairs.
        r0 = Lo64(t0, t2); r1 = Hi64(t0, t2); r2 = Lo64(t1, t3); r3 = Hi64(t1, t3);
        r4 = Lo64(t4, t6); r5 = Hi64(t4, t6); r6 = Lo64(t5, t7); r7 = Hi64(t5, t7);
        r8 = Lo64(t8, t10); r9 = Hi64(t8, t10); r10 = Lo64(t9, t11); r11 = Hi64(t9, t11);
        r12 = Lo64(t12, t14); r13 = Hi64(t12, t14); r14 = Lo64(t13, t15); r15 = Hi64(t13, t15);

        // Stages 3 and 4: gather 128-bit lanes (0x88 takes the even lanes of both inputs, 0xDD the odd ones).
        t0 = Avx512F.Shuffle4x128(r0, r4, 0x88); t1 = Avx512F.Shuffle4x128(r1, r5, 0x88);
        t2 = Avx512F.Shuffle4x128(r2, r6, 0x88); t3 = Avx512F.Shuffle4x128(r3, r7, 0x88);
        t4 = Avx512F.Shuffle4x128(r0, r4, 0xDD); t5 = Avx512F.Shuffle4x128(r1, r5, 0xDD);
        t6 = Avx512F.Shuffle4x128(r2, r6, 0xDD); t7 = Avx512F.Shuffle4x128(r3, r7, 0xDD);
        t8 = Avx512F.Shuffle4x128(r8, r12, 0x88); t9 = Avx512F.Shuffle4x128(r9, r13, 0x88);
        t10 = Avx512F.Shuffle4x128(r10, r14, 0x88); t11 = Avx512F.Shuffle4x128(r11, r15, 0x88);
        t12 = Avx512F.Shuffle4x128(r8, r12, 0xDD); t13 = Avx512F.Shuffle4x128(r9, r13, 0xDD);
        t14 = Avx512F.Shuffle4x128(r10, r14, 0xDD); t15 = Avx512F.Shuffle4x128(r11, r15, 0xDD);

        Avx512F.Shuffle4x128(t0, t8, 0x88).Store(dst);
        Avx512F.Shuffle4x128(t1, t9, 0x88).Store(dst + dstStride);
        Avx512F.Shuffle4x128(t2, t10, 0x88).Store(dst + 2L * dstStride);
        Avx512F.Shuffle4x128(t3, t11, 0x88).Store(dst + 3L * dstStride);
        Avx512F.Shuffle4x128(t4, t12, 0x88).Store(dst + 4L * dstStride);
        Avx512F.Shuffle4x128(t5, t13, 0x88).Store(dst + 5L * dstStride);
        Avx512F.Shuffle4x128(t6, t14, 0x88).Store(dst + 6L * dstStride);
        Avx512F.Shuffle4x128(t7, t15, 0x88).Store(dst + 7L * dstStride);
        Avx512F.Shuffle4x128(t0, t8, 0xDD).Store(dst + 8L * dstStride);
        Avx512F.Shuffle4x128(t1, t9, 0xDD).Store(dst + 9L * dstStride);
        Avx512F.Shuffle4x128(t2, t10, 0xDD).Store(dst + 10L * dstStride);
        Avx512F.Shuffle4x128(t3, t11, 0xDD).Store(dst + 11L * dstStride);
        Avx512F.Shuffle4x128(t4, t12, 0xDD).Store(dst + 12L * dstStride);
        Avx512F.Shuffle4x128(t5, t13, 0xDD).Store(dst + 13L * dstStride);
        Avx512F.Shuffle4x128(t6, t14, 0xDD).Store(dst + 14L * dstStride);
        Avx512F.Shuffle4x128(t7, t15, 0xDD).Store(dst + 15L * dstStride);
    }

    private static Vector512<float> Lo64(Vector512<float> x, Vector512<float> y) =>
        Avx512F.UnpackLow(x.AsDouble(), y.AsDouble()).AsSingle();
    private static Vector512<float> Hi64(Vector512<float> x, Vector512<float> y) =>
        Avx512F.UnpackHigh(x.AsDouble(), y.AsDouble()).AsSingle();
}
