using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoRA.Managed.Kernels;

/// <summary>
/// op(B) for <see cref="Gemm"/>'s five loops read from a quantised <c>W [out, in]</c>: the packing stage expands W
/// straight into the micro-kernel's NR-column panels, so a weight element is expanded once per use of its panel and
/// no float copy of W, whole or in row blocks, exists.
/// </summary>
/// <remarks>
/// <para><c>transposed</c>: op(B) = Wᵀ (the forward <c>y = x·Wᵀ</c>, op(B)[p, j] = W[offset + j, p]); otherwise
/// op(B) = W (the input gradient <c>dx += dy·W</c>, op(B)[p, j] = W[p, offset + j]). <c>offset</c> is the first
/// column of op(B) this source covers: a thread's share of the output.</para>
/// <para>Every element is expanded as <see cref="QuantizedMatrix.ExpandRange"/> expands it (through the row-wise
/// <c>QuantizedMatrix.ExpandRow</c>), and the loops sum exactly as for a float B, so the product is bitwise
/// <see cref="Gemm.Multiply"/> over the dequantised W (<c>QuantizedLinearTests</c>).</para>
/// </remarks>
[SkipLocalsInit]
internal readonly unsafe struct QuantizedPanels(QuantizedMatrix w, bool transposed, int offset) : IPanelSourceB
{
    private const int Group = 16; // rows of W expanded before one 16×16 register transpose into the panel

    // Group rows of a KC-deep run of W, row-major (16 KB at KC = 256): expanded, then turned round while in L1.
    [ThreadStatic] private static float[]? t_rows;

    // One row of a block of op(B) (up to NC values), expanded once and copied into the block's panels.
    [ThreadStatic] private static float[]? t_row;

    public void Pack(int pc, int jc, int kc, int nc, int nr, float* dst)
    {
        if (transposed) PackTransposed(pc, jc, kc, nc, nr, dst);
        else PackRows(pc, jc, kc, nc, nr, dst);
    }

    /// <summary>
    /// op(B)[p, j] = W[offset + jc + j, pc + p]: a panel's column j is a contiguous run of W's row, so sixteen rows
    /// are expanded into a small buffer and transposed 16×16 in registers into sixteen columns of the panel (the
    /// float GEMM packs a transposed B the same way, <see cref="Packing.PackB"/>).
    /// </summary>
    private void PackTransposed(int pc, int jc, int kc, int nc, int nr, float* dst)
    {
        float[] buffer = t_rows ??= GC.AllocateUninitializedArray<float>(Group * Gemm.KC + 16, pinned: true);
        fixed (float* unaligned = buffer)
        {
            float* rows = Gemm.Align64(unaligned);
            for (int jr = 0; jr < nc; jr += nr)
            {
                float* panel = dst + (long)jr * kc;
                int width = Math.Min(nr, nc - jr);
                for (int g = 0; g < nr; g += Group)
                {
                    int count = Math.Clamp(width - g, 0, Group);
                    int first = offset + jc + jr + g;
                    for (int j = 0; j < count; j++) w.ExpandRow(first + j, pc, kc, rows + j * kc);
                    Transpose(rows, count, kc, panel + g, nr);
                }
            }
        }
    }

    // panel[p·nr + j] = rows[j·kc + p] for j < count, zero for count ≤ j < 16.
    private static void Transpose(float* rows, int count, int kc, float* panel, int nr)
    {
        int p0 = 0;
        if (count > 0 && Avx512F.IsSupported)
            for (; p0 + 16 <= kc; p0 += 16)
                Packing.Transpose16x16(rows + p0, kc, count, panel + (long)p0 * nr, nr);
        for (int p = p0; p < kc; p++)
        {
            float* d = panel + (long)p * nr;
            int j = 0;
            for (; j < count; j++) d[j] = rows[(long)j * kc + p];
            for (; j < Group; j++) d[j] = 0f;
        }
    }

    /// <summary>
    /// op(B)[p, j] = W[pc + p, offset + jc + j]: each step of p of a panel is a run of W's row. A block of several
    /// panels expands its whole row (up to NC values) once into a buffer and copies NR values into each panel: with
    /// one expansion call per 32 values the input gradient on GPT-2's shapes ran 2–7 % slower on one thread. A single
    /// panel (few rows of activations) is expanded in place.
    /// </summary>
    private void PackRows(int pc, int jc, int kc, int nc, int nr, float* dst)
    {
        int column = offset + jc;
        if (nc <= nr)
        {
            for (int p = 0; p < kc; p++)
            {
                float* d = dst + (long)p * nr;
                w.ExpandRow(pc + p, column, nc, d);
                for (int j = nc; j < nr; j++) d[j] = 0f;
            }
            return;
        }
        float[] buffer = t_row ??= GC.AllocateUninitializedArray<float>(Gemm.NC + 16, pinned: true);
        fixed (float* unaligned = buffer)
        {
            float* row = Gemm.Align64(unaligned);
            for (int p = 0; p < kc; p++)
            {
                w.ExpandRow(pc + p, column, nc, row);
                for (int jr = 0; jr < nc; jr += nr)
                {
                    float* d = dst + (long)jr * kc + (long)p * nr;
                    int width = Math.Min(nr, nc - jr);
                    if (width == 32 && Vector512.IsHardwareAccelerated)
                    {
                        Vector512.Load(row + jr).Store(d);
                        Vector512.Load(row + jr + 16).Store(d + 16);
                        continue;
                    }
                    new ReadOnlySpan<float>(row + jr, width).CopyTo(new Span<float>(d, width));
                    for (int j = width; j < nr; j++) d[j] = 0f;
                }
            }
        }
    }
}
