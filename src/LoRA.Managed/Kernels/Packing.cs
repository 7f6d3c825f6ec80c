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
/// </remarks>
internal static unsafe class Packing
{
    /// <summary>Packs op(A)[ic..ic+mc, pc..pc+kc] into MR-row panels.</summary>
    public static void PackA(bool transA, float* a, int lda, int ic, int pc, int mc, int kc, int mr, float* dst)
    {
        for (int ir = 0; ir < mc; ir += mr)
        {
            int rows = Math.Min(mr, mc - ir);
            float* panel = dst + ir * kc;
            if (transA)
            {
                // op(A)[i, p] = a[p·lda + i]: for each p the panel's MR values are contiguous in memory.
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
                // op(B)[p, j] = b[j·ldb + p]: read each stored row (a column of op(B)) contiguously.
                for (int j = 0; j < cols; j++)
                {
                    float* src = b + (long)(jc + jr + j) * ldb + pc;
                    float* d = panel + j;
                    for (int p = 0; p < kc; p++) d[p * nr] = src[p];
                }
                for (int j = cols; j < nr; j++)
                {
                    float* d = panel + j;
                    for (int p = 0; p < kc; p++) d[p * nr] = 0f;
                }
            }
            else
            {
                // op(B)[p, j] = b[p·ldb + j]: each step of p copies NR contiguous values.
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
}
