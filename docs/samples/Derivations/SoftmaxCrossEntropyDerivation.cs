using LoRA.Managed.Autograd;

namespace LoRA.Managed.Samples.Derivations;

/// <summary>
/// Chapter 4: L = −(1/B) Σ_b log softmax(z_b)[y_b]. With p = softmax(z), log pᵧ = zᵧ − log Σⱼ e^{zⱼ}, so
/// ∂(−log pᵧ)/∂zₖ = −[k = y] + e^{zₖ}/Σⱼ e^{zⱼ} = pₖ − [k = y]: the gradient is p − onehot(y), over B.
/// And log Σ e^{z} = m + log Σ e^{z − m} for any m; m = max z keeps every exponent ≤ 0.
/// </summary>
public static class SoftmaxCrossEntropyDerivation
{
    private const int B = 3, C = 4;
    private static readonly int[] Labels = [2, 0, 3];

    /// <summary>Checks p − onehot against finite differences and the library's cross-entropy.</summary>
    public static string Check()
    {
        double[] z = GradCheck.Random(B * C, 5).Select(v => 3 * v).ToArray();
        double[] dz = Backward(z);
        double fd = GradCheck.MaxDiff(dz, GradCheck.Numeric(Loss, z));
        var tz = GradCheck.Tensor(z, true, B, C);
        Functional.CrossEntropy(tz, Labels).Backward();
        return GradCheck.Verdict("softmax + cross-entropy: dz = (p − onehot(y)) / B", fd,
            GradCheck.MaxDiff(dz, tz.Grad));
    }

    /// <summary>log Σ e^{z} for logits in the thousands, without and with the max subtracted.</summary>
    public static string Overflow()
    {
        double[] z = [1000, 999, 998];
        double naive = Math.Log(z.Sum(Math.Exp));                 // e^1000 is +∞ in double (and e^89 in float)
        return $"log Σ exp(z) at z = [1000, 999, 998]: without the max {naive}, with it {LogSumExp(z):F4}";
    }

    /// <summary>m + log Σ e^{z − m}, m = max z.</summary>
    public static double LogSumExp(ReadOnlySpan<double> z)
    {
        double m = double.NegativeInfinity, s = 0;
        foreach (double v in z) m = Math.Max(m, v);
        foreach (double v in z) s += Math.Exp(v - m);
        return m + Math.Log(s);
    }

    private static double Loss(double[] z)
    {
        double l = 0;
        for (int b = 0; b < B; b++) l -= z[b * C + Labels[b]] - LogSumExp(z.AsSpan(b * C, C));
        return l / B;
    }

    /// <summary>The derived gradient: (softmax(z) − onehot(y)) / B.</summary>
    public static double[] Backward(double[] z)
    {
        var dz = new double[B * C];
        for (int b = 0; b < B; b++)
        {
            double lse = LogSumExp(z.AsSpan(b * C, C));
            for (int k = 0; k < C; k++)
                dz[b * C + k] = (Math.Exp(z[b * C + k] - lse) - (k == Labels[b] ? 1 : 0)) / B;
        }
        return dz;
    }
}
