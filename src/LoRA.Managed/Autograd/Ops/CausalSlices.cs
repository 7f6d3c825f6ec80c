using LoRA.Managed.Kernels;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// One slice of attention's two causal products, each only over the unmasked triangle, in blocks of
/// <see cref="BlockRows"/> rows (<see cref="BatchedMatMulOp"/> with <c>causal</c>):
/// <list type="bullet">
/// <item>scores <c>S = tril(Q·Kᵀ)</c> (T×hs · (T×hs)ᵀ): rows i of a block [r₀, r₁) need columns j ≤ i &lt; r₁;
/// backward <c>∂Q = ∂S·K</c> needs depth j &lt; r₁ and <c>∂K = ∂Sᵀ·Q</c>, row j, needs depth i ≥ j ≥ r₀;</item>
/// <item>weighted sum <c>Y = P·V</c> with P lower triangular (T×T · T×hs): a block needs depth j &lt; r₁;
/// backward <c>∂P = tril(∂Y·Vᵀ)</c> columns j &lt; r₁, and <c>∂V = Pᵀ·∂Y</c>, row j, depth i ≥ j ≥ r₀.</item>
/// </list>
/// The terms left out are products with the masked entries, which are exact zeros (the causal softmax writes P's and
/// ∂S's masked entries as 0), and GEMM sums every element in depth order from a zero accumulator, in blocks of
/// <c>Gemm.KC</c> from depth 0: a depth cut at its end drops trailing <c>+0·x</c> terms and one cut at its start
/// (aligned down to a multiple of KC, so the blocks stay where they were) drops leading ones, so every kept element
/// has the bits of the full product (up to the sign of an exact zero sum).
/// </summary>
/// <remarks>
/// Contract, as attention meets it: P (forward) and ∂S (backward) are zero above the diagonal; they are read there
/// only inside the diagonal blocks. Outputs S and ∂P (when written, β = 0) get exact zeros above the diagonal, so no
/// stale arena memory reaches any tensor; with β = 1 those entries of ∂P are left as they were (adding zero).
/// </remarks>
internal static class CausalSlices
{
    /// <summary>Rows per block: smaller blocks skip more of the masked triangle (T²/2 − T·R/2 of T² entries are
    /// computed) but issue more, smaller GEMM calls.</summary>
    internal static int BlockRows = 32;

    /// <summary>S (t×t, row stride t) = tril(q·kᵀ); q and k are t×hs with row strides ldq and ldk.</summary>
    public static void ScoresForward(ReadOnlySpan<float> q, int ldq, ReadOnlySpan<float> k, int ldk, Span<float> s,
        int t, int hs)
    {
        for (int r0 = 0; r0 < t; r0 += BlockRows)
        {
            int r1 = Math.Min(t, r0 + BlockRows);
            Gemm.Multiply(false, true, r1 - r0, r1, hs, 1f, q[(r0 * ldq)..], ldq, k, ldk, 0f, s[(r0 * t)..], t);
        }
        ClearAboveDiagonal(s, t);
    }

    /// <summary>∂q (β) += ∂S·k over j ≤ i.</summary>
    public static void ScoresGradQ(ReadOnlySpan<float> ds, ReadOnlySpan<float> k, int ldk, float beta, Span<float> dq,
        int t, int hs)
    {
        for (int r0 = 0; r0 < t; r0 += BlockRows)
        {
            int r1 = Math.Min(t, r0 + BlockRows);
            Gemm.Multiply(false, false, r1 - r0, hs, r1, 1f, ds[(r0 * t)..], t, k, ldk, beta, dq[(r0 * hs)..], hs);
        }
    }

    /// <summary>∂k (β) += ∂Sᵀ·q over i ≥ j.</summary>
    public static void ScoresGradK(ReadOnlySpan<float> ds, ReadOnlySpan<float> q, int ldq, float beta, Span<float> dk,
        int t, int hs)
    {
        for (int r0 = 0; r0 < t; r0 += BlockRows)
        {
            int r1 = Math.Min(t, r0 + BlockRows), d0 = DepthStart(r0);
            Gemm.Multiply(true, false, r1 - r0, hs, t - d0, 1f, ds[(d0 * t + r0)..], t, q[(d0 * ldq)..], ldq, beta,
                dk[(r0 * hs)..], hs);
        }
    }

    /// <summary>y (t×hs) = P·v, P lower triangular (t×t, row stride t), v t×hs with row stride ldv.</summary>
    public static void WeightedForward(ReadOnlySpan<float> p, ReadOnlySpan<float> v, int ldv, Span<float> y, int t,
        int hs)
    {
        for (int r0 = 0; r0 < t; r0 += BlockRows)
        {
            int r1 = Math.Min(t, r0 + BlockRows);
            Gemm.Multiply(false, false, r1 - r0, hs, r1, 1f, p[(r0 * t)..], t, v, ldv, 0f, y[(r0 * hs)..], hs);
        }
    }

    /// <summary>∂P (β) += tril(∂y·vᵀ).</summary>
    public static void WeightedGradP(ReadOnlySpan<float> dy, ReadOnlySpan<float> v, int ldv, float beta,
        Span<float> dp, int t, int hs)
    {
        for (int r0 = 0; r0 < t; r0 += BlockRows)
        {
            int r1 = Math.Min(t, r0 + BlockRows);
            Gemm.Multiply(false, true, r1 - r0, r1, hs, 1f, dy[(r0 * hs)..], hs, v, ldv, beta, dp[(r0 * t)..], t);
        }
        if (beta == 0f) ClearAboveDiagonal(dp, t);
    }

    /// <summary>∂v (β) += Pᵀ·∂y over i ≥ j.</summary>
    public static void WeightedGradV(ReadOnlySpan<float> p, ReadOnlySpan<float> dy, float beta, Span<float> dv,
        int t, int hs)
    {
        for (int r0 = 0; r0 < t; r0 += BlockRows)
        {
            int r1 = Math.Min(t, r0 + BlockRows), d0 = DepthStart(r0);
            Gemm.Multiply(true, false, r1 - r0, hs, t - d0, 1f, p[(d0 * t + r0)..], t, dy[(d0 * hs)..], hs, beta,
                dv[(r0 * hs)..], hs);
        }
    }

    // GEMM sums depth in blocks of KC from its first index: starting on a multiple of KC keeps every block boundary
    // of the full product.
    private static int DepthStart(int r0) => r0 / Gemm.KC * Gemm.KC;

    private static void ClearAboveDiagonal(Span<float> m, int t)
    {
        for (int i = 0; i + 1 < t; i++) m.Slice(i * t + i + 1, t - i - 1).Clear();
    }
}
