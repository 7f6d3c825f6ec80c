using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Samples.Derivations;

/// <summary>
/// Chapter 9: the norms' backward, per row of n values, with g = w ⊙ dY.
/// RMSNorm: y = w ⊙ x / r, r = √(mean(x²) + ε); ∂r/∂xⱼ = xⱼ/(n·r), so dx = g/r − x·(Σⱼ gⱼxⱼ)/(n·r³).
/// LayerNorm: x̂ = (x − μ)/σ, σ = √(var(x) + ε), y = w ⊙ x̂ + b; dx = (g − mean(g) − x̂·mean(g ⊙ x̂))/σ.
/// </summary>
public static class NormDerivation
{
    private const int Rows = 2, N = 6;
    private const double Eps = 1e-5;

    /// <summary>Checks both against finite differences and the library's ops.</summary>
    public static string Check()
    {
        double[] x = GradCheck.Random(Rows * N, 21), w = GradCheck.Random(N, 22), b = GradCheck.Random(N, 23);
        double[] dy = GradCheck.Random(Rows * N, 24);

        double[] dxRms = RmsBackward(x, w, dy);
        double fdRms = GradCheck.MaxDiff(dxRms, GradCheck.Numeric(v => GradCheck.Dot(Rms(v, w), dy), x));
        var tx = GradCheck.Tensor(x, true, Rows, N);
        GradCheck.Loss(Functional.RmsNorm(tx, GradCheck.Tensor(w, false, N), (float)Eps), dy).Backward();
        string rms = GradCheck.Verdict("RMSNorm: dx = g/r − x·Σ(g⊙x)/(n·r³)", fdRms, GradCheck.MaxDiff(dxRms, tx.Grad));

        double[] dxLn = LayerBackward(x, w, dy);
        double fdLn = GradCheck.MaxDiff(dxLn, GradCheck.Numeric(v => GradCheck.Dot(Layer(v, w, b), dy), x));
        var tx2 = GradCheck.Tensor(x, true, Rows, N);
        Tensor wt = GradCheck.Tensor(w, false, N), bt = GradCheck.Tensor(b, false, N);
        Tensor ln2 = Functional.LayerNorm(tx2, wt, bt, (float)Eps);
        GradCheck.Loss(ln2, dy).Backward();
        string ln = GradCheck.Verdict("LayerNorm: dx = (g − mean(g) − x̂·mean(g⊙x̂))/σ", fdLn,
            GradCheck.MaxDiff(dxLn, tx2.Grad));
        return rms + "\n" + ln;
    }

    private static double[] Rms(double[] x, double[] w)
    {
        var y = new double[x.Length];
        for (int row = 0; row < Rows; row++)
        {
            var xr = x.AsSpan(row * N, N);
            double r = Math.Sqrt(xr.ToArray().Average(v => v * v) + Eps);
            for (int j = 0; j < N; j++) y[row * N + j] = w[j] * xr[j] / r;
        }
        return y;
    }

    /// <summary>The derived RMSNorm input gradient.</summary>
    public static double[] RmsBackward(double[] x, double[] w, double[] dy)
    {
        var dx = new double[x.Length];
        for (int row = 0; row < Rows; row++)
        {
            int o = row * N;
            double r = Math.Sqrt(x.AsSpan(o, N).ToArray().Average(v => v * v) + Eps), gx = 0;
            for (int j = 0; j < N; j++) gx += w[j] * dy[o + j] * x[o + j];                  // Σ g⊙x
            for (int j = 0; j < N; j++) dx[o + j] = w[j] * dy[o + j] / r - x[o + j] * gx / (N * r * r * r);
        }
        return dx;
    }

    private static double[] Layer(double[] x, double[] w, double[] b)
    {
        var y = new double[x.Length];
        for (int row = 0; row < Rows; row++)
        {
            double[] xr = x.AsSpan(row * N, N).ToArray();
            double mu = xr.Average(), sigma = Math.Sqrt(xr.Average(v => (v - mu) * (v - mu)) + Eps);
            for (int j = 0; j < N; j++) y[row * N + j] = w[j] * (xr[j] - mu) / sigma + b[j];
        }
        return y;
    }

    /// <summary>The derived LayerNorm input gradient.</summary>
    public static double[] LayerBackward(double[] x, double[] w, double[] dy)
    {
        var dx = new double[x.Length];
        for (int row = 0; row < Rows; row++)
        {
            int o = row * N;
            double[] xr = x.AsSpan(o, N).ToArray();
            double mu = xr.Average(), sigma = Math.Sqrt(xr.Average(v => (v - mu) * (v - mu)) + Eps);
            double meanG = 0, meanGx = 0;
            for (int j = 0; j < N; j++)
            {
                double g = w[j] * dy[o + j], xhat = (xr[j] - mu) / sigma;
                meanG += g / N;
                meanGx += g * xhat / N;
            }
            for (int j = 0; j < N; j++)
                dx[o + j] = (w[j] * dy[o + j] - meanG - (xr[j] - mu) / sigma * meanGx) / sigma;
        }
        return dx;
    }
}
