using LoRA.Managed.Nn;
using LoRA.Managed.Optim;

namespace LoRA.Managed.Samples.Derivations;

/// <summary>
/// Chapter 4: Adam's bias correction. With m₀ = 0, m_t = β₁m_{t−1} + (1−β₁)g_t unrolls to
/// m_t = (1−β₁) Σᵢ β₁^{t−i} gᵢ; for a constant gradient g the geometric sum is (1−β₁^t)·g, so m_t is too small by
/// exactly (1−β₁^t) and m̂_t = m_t / (1−β₁^t) = g (likewise v̂_t = g²). Each step then moves θ by lr·g/|g| = lr.
/// </summary>
public static class AdamDerivation
{
    /// <summary>The moments of a constant gradient, raw and corrected, and the library's θ after five steps.</summary>
    public static string Check()
    {
        const double beta1 = 0.9, g = 0.5;
        double m = 0, worst = 0;
        for (int t = 1; t <= 5; t++)
        {
            m = beta1 * m + (1 - beta1) * g;
            worst = Math.Max(worst, Math.Abs(m / (1 - Math.Pow(beta1, t)) - g));      // m̂_t − g
        }
        var p = new Parameter(1);
        p.Data[0] = 1f;
        var adam = new Adam([p], learningRate: 0.01);
        for (int t = 1; t <= 5; t++)
        {
            p.EnsureGrad()[0] = (float)g;
            adam.StepAndZeroGrad();
        }
        bool ok = worst < 1e-15 && Math.Abs(p.Data[0] - 0.95) < 1e-6;
        return ok
            ? $"Adam: m_1 = {(1 - beta1) * g:F2} raw, {g:F2} corrected; " +
              $"five steps of lr 0.01 move θ from 1 to {p.Data[0]:F4}"
            : $"Adam: FAIL (m̂ − g up to {worst:E2}, θ = {p.Data[0]})";
    }

    /// <summary>
    /// Chapter 7: a first moment whose gradient turns to zero decays by m ← m + 0.1·(0 − m) into the subnormal
    /// floats, where the decrement rounds to whole multiples of 2⁻¹⁴⁹; the library's Adam, like PyTorch's, stops at
    /// 4·2⁻¹⁴⁹.
    /// </summary>
    public static string SubnormalFloor()
    {
        var p = new Parameter(16);          // a full vector of lanes, so the vectorised kernel runs
        p.Data.Fill(1f);
        var adam = new Adam([p], learningRate: 1e-3);
        Array.Fill(p.EnsureGrad(), 1f);
        adam.StepAndZeroGrad();             // m = 0.1, then zero gradients from here on
        for (int t = 0; t < 2000; t++) adam.StepAndZeroGrad();
        float m = adam.FirstMoments[0][0];
        return $"Adam's first moment after 2,000 zero gradients: {m / MathF.Pow(2, -149):F0} × 2^-149 " +
               "(subnormal, not 0)";
    }
}
