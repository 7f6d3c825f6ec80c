using LoRA.Managed.Kernels;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// One slice of attention's two causal products, skipping work on the masked triangle where that pays
/// (<see cref="BatchedMatMulOp"/> with <c>causal</c>): scores <c>S = Q·Kᵀ</c> (T×hs · (T×hs)ᵀ), needed for j ≤ i
/// only, and the weighted sum <c>Y = P·V</c> with P lower triangular (T×T · T×hs), with their gradients.
/// <list type="bullet">
/// <item>Products whose depth is the masked dimension with A read by rows, <c>Y = P·V</c> and <c>∂Q = ∂S·K</c>:
/// a block of rows [r₀, r₁) needs depth j &lt; r₁ only; with A read by columns, <c>∂K = ∂Sᵀ·Q</c> and
/// <c>∂V = Pᵀ·∂Y</c>: row j needs depth i ≥ j, a block depth from r₀ (<see cref="BlockRows"/> rows per block).</item>
/// <item>Products whose columns are masked, <c>S</c> and <c>∂P = ∂Y·Vᵀ</c>: a block needs columns j &lt; r₁
/// (<see cref="ColumnBlockRows"/> rows per block).</item>
/// </list>
/// The terms left out are products with masked entries, exact zeros (the causal softmax writes P's and ∂S's masked
/// entries as 0), and GEMM sums every element in depth order from a zero accumulator, in blocks of <c>Gemm.KC</c>
/// from depth 0, C updated after each: cutting the depth at its end drops trailing <c>+0·x</c> terms (or whole
/// blocks that would add +0 to C), cutting its start drops leading ones (see <c>DepthStart</c>), so every kept
/// element has the bits of the full product (up to the sign of an exact zero sum). Measured per product with
/// <c>--causal --products</c> (T = 64, 1 thread): P·V 1.43×, ∂V 1.38×, S 1.07×, ∂P 1.11× the full product.
/// </summary>
/// <remarks>
/// Contract, as attention meets it: P (forward) and ∂S (backward) are zero above the diagonal; inside the diagonal
/// blocks they are read. The masked entries of S and of ∂P (when written, β = 0) hold the full product's value
/// inside the diagonal blocks and exact zeros right of them, so no stale arena memory reaches any tensor (nothing
/// reads them: the causal softmax reads j ≤ i only); with β = 1 those of ∂P right of the blocks are left as they
/// were.
/// </remarks>
internal static unsafe class CausalSlices
{
    /// <summary>Rows per block of the depth-cut products: 16 skipped more than 32 did (P·V at T = 64: 1.44× against
    /// 1.29×; ∂V 1.38× against 1.26×).</summary>
    internal static int BlockRows = 16;

    /// <summary>Rows per block of the column-cut products: 32 beat 16 (S at T = 64: 1.07× against 0.93× of the full
    /// product; at T = 128: 1.18× against 1.05×), each block re-packing its columns of op(B).</summary>
    internal static int ColumnBlockRows = 32;

    /// <summary>When set, each product runs as the full GEMM (the kept entries' bits are the same; S's and ∂P's
    /// masked entries then hold the product's values, which nothing reads): only for <c>--causal</c>, which times the
    /// two side by side through <see cref="BatchedMatMulOp"/>, <see cref="HeadsCausalMatMulOp"/> and the GPT
    /// step.</summary>
    internal static bool FullProducts;

    // Each of the three products below serves one forward and one gradient: the scores S = q·kᵀ and ∂P = ∂y·vᵀ are
    // both tril(A·Bᵀ); y = P·v and ∂q = ∂S·k both multiply by a lower-triangular t×t A; ∂v = Pᵀ·∂y and ∂k = ∂Sᵀ·q by
    // its transpose.

    /// <summary>
    /// C (t×t, row stride t; β) = A·Bᵀ on j ≤ i (S = q·kᵀ, ∂P = ∂y·vᵀ); A and B are t×hs with row strides lda and ldb.
    /// With β = 0 the part right of each row block is zeroed; with β = 1 it is left as it was.
    /// </summary>
    public static void LowerTimesTransposed(ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int t, int hs)
    {
        if (FullProducts)
        {
            Gemm.Multiply(false, true, t, t, hs, 1f, a, lda, b, ldb, beta, c, t);
            return;
        }
        for (int r0 = 0; r0 < t; r0 += ColumnBlockRows)
        {
            int r1 = Math.Min(t, r0 + ColumnBlockRows);
            Gemm.Multiply(false, true, r1 - r0, r1, hs, 1f, a[(r0 * lda)..], lda, b, ldb, beta, c[(r0 * t)..], t);
            if (beta == 0f) ClearRight(c, t, r0, r1);
        }
    }

    /// <summary>C (t×hs, row stride ldc; β) = L·B for L lower triangular (t×t, row stride t) and B t×hs with row
    /// stride ldb (y = P·v, ∂q = ∂S·k).</summary>
    public static void LowerTimes(ReadOnlySpan<float> l, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c,
        int ldc, int t, int hs)
    {
        if (FullProducts)
        {
            Gemm.Multiply(false, false, t, hs, t, 1f, l, t, b, ldb, beta, c, ldc);
            return;
        }
        for (int r0 = 0; r0 < t; r0 += BlockRows)
        {
            int r1 = Math.Min(t, r0 + BlockRows);
            Gemm.Multiply(false, false, r1 - r0, hs, r1, 1f, l[(r0 * t)..], t, b, ldb, beta, c[(r0 * ldc)..], ldc);
        }
    }

    /// <summary>C (t×hs, row stride ldc; β) = Lᵀ·B for L lower triangular (t×t, row stride t) and B t×hs with row
    /// stride ldb (∂v = Pᵀ·∂y, ∂k = ∂Sᵀ·q).</summary>
    public static void LowerTransposedTimes(ReadOnlySpan<float> l, ReadOnlySpan<float> b, int ldb, float beta,
        Span<float> c, int ldc, int t, int hs)
    {
        if (FullProducts)
        {
            Gemm.Multiply(true, false, t, hs, t, 1f, l, t, b, ldb, beta, c, ldc);
            return;
        }
        for (int r0 = 0; r0 < t; r0 += BlockRows)
        {
            int r1 = Math.Min(t, r0 + BlockRows), d0 = DepthStart(r0, t);
            Gemm.Multiply(true, false, r1 - r0, hs, t - d0, 1f, l[(d0 * t + r0)..], t, b[(d0 * ldb)..], ldb, beta,
                c[(r0 * ldc)..], ldc);
        }
    }

    // GEMM sums depth in blocks of KC from its first index, C updated after each. Starting at r0 keeps every kept
    // term's order when r0 lies in the full product's last block (the earlier blocks only add +0 to C), else the start
    // goes down to a multiple of KC, so the blocks stay where they were.
    private static int DepthStart(int r0, int t) => r0 >= (t - 1) / Gemm.KC * Gemm.KC ? r0 : r0 / Gemm.KC * Gemm.KC;

    // Zeroes columns r1..t-1 of rows r0..r1-1, the part of a row block its GEMM did not write, with the causal
    // softmax's vector stores (one Span.Clear call per row cost more than the skipped products saved at T = 64).
    private static void ClearRight(Span<float> m, int t, int r0, int r1)
    {
        if (r1 == t) return;
        fixed (float* pm = m)
            for (int i = r0; i < r1; i++) SoftmaxRow.Clear(pm + (long)i * t + r1, t - r1);
    }
}
