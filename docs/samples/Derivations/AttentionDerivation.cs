using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Samples.Derivations;

/// <summary>
/// Chapter 9: one head of causal attention, S = s·Q·Kᵀ (masked to j ≤ i), P = softmax(S) row by row, O = P·V.
/// Backward, from dO: dV = Pᵀ·dO and dP = dO·Vᵀ (the linear rule); through the softmax of a row,
/// ∂Pᵢⱼ/∂Sᵢₖ = Pᵢⱼ([j = k] − Pᵢₖ), so dSᵢₖ = Pᵢₖ(dPᵢₖ − Σⱼ Pᵢⱼ dPᵢⱼ); then dQ = s·dS·K and dK = s·dSᵀ·Q.
/// </summary>
public static class AttentionDerivation
{
    private const int T = 4, D = 3;

    /// <summary>Checks dQ, dK, dV against finite differences and the library's ops.</summary>
    public static string Check()
    {
        double scale = 1 / Math.Sqrt(D);
        double[] q = GradCheck.Random(T * D, 31), k = GradCheck.Random(T * D, 32), v = GradCheck.Random(T * D, 33);
        double[] dO = GradCheck.Random(T * D, 34);
        var (dq, dk, dv) = Backward(q, k, v, dO, scale);
        double fd = Math.Max(Math.Max(
            GradCheck.MaxDiff(dq, GradCheck.Numeric(x => GradCheck.Dot(Forward(x, k, v, scale).O, dO), q)),
            GradCheck.MaxDiff(dk, GradCheck.Numeric(x => GradCheck.Dot(Forward(q, x, v, scale).O, dO), k))),
            GradCheck.MaxDiff(dv, GradCheck.Numeric(x => GradCheck.Dot(Forward(q, k, x, scale).O, dO), v)));

        var tq = GradCheck.Tensor(q, true, 1, T, D);
        var tk = GradCheck.Tensor(k, true, 1, T, D);
        var tv = GradCheck.Tensor(v, true, 1, T, D);
        Tensor p = Functional.CausalSoftmax(Functional.BatchedMatMul(tq, tk, transposeB: true), (float)scale);
        GradCheck.Loss(Functional.BatchedMatMul(p, tv), dO).Backward();
        double lib = Math.Max(Math.Max(GradCheck.MaxDiff(dq, tq.Grad), GradCheck.MaxDiff(dk, tk.Grad)),
            GradCheck.MaxDiff(dv, tv.Grad));
        return GradCheck.Verdict("attention: dV = Pᵀ·dO, dS = P⊙(dP − rowsum(P⊙dP)), dQ = s·dS·K, dK = s·dSᵀ·Q",
            fd, lib);
    }

    private static (double[] P, double[] O) Forward(double[] q, double[] k, double[] v, double scale)
    {
        var p = new double[T * T];
        var o = new double[T * D];
        for (int i = 0; i < T; i++)
        {
            double max = double.NegativeInfinity, sum = 0;
            for (int j = 0; j <= i; j++)
            {
                double s = 0;
                for (int d = 0; d < D; d++) s += q[i * D + d] * k[j * D + d];
                p[i * T + j] = scale * s;
                max = Math.Max(max, scale * s);
            }
            for (int j = 0; j <= i; j++) sum += p[i * T + j] = Math.Exp(p[i * T + j] - max);
            for (int j = 0; j <= i; j++)
            {
                p[i * T + j] /= sum;
                for (int d = 0; d < D; d++) o[i * D + d] += p[i * T + j] * v[j * D + d];
            }
        }
        return (p, o);
    }

    /// <summary>The derived gradients.</summary>
    public static (double[] Dq, double[] Dk, double[] Dv) Backward(double[] q, double[] k, double[] v, double[] dO,
        double scale)
    {
        double[] p = Forward(q, k, v, scale).P;
        double[] dq = new double[T * D], dk = new double[T * D], dv = new double[T * D];
        for (int i = 0; i < T; i++)
        {
            var dp = new double[T];
            double rowDot = 0;
            for (int j = 0; j <= i; j++)
            {
                for (int d = 0; d < D; d++)
                {
                    dv[j * D + d] += p[i * T + j] * dO[i * D + d];                  // dV = Pᵀ·dO
                    dp[j] += dO[i * D + d] * v[j * D + d];                          // dP = dO·Vᵀ
                }
                rowDot += p[i * T + j] * dp[j];                                     // Σⱼ Pᵢⱼ dPᵢⱼ
            }
            for (int j = 0; j <= i; j++)
            {
                double ds = p[i * T + j] * (dp[j] - rowDot);                        // through the softmax
                for (int d = 0; d < D; d++)
                {
                    dq[i * D + d] += scale * ds * k[j * D + d];                     // dQ = s·dS·K
                    dk[j * D + d] += scale * ds * q[i * D + d];                     // dK = s·dSᵀ·Q
                }
            }
        }
        return (dq, dk, dv);
    }
}
