using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Samples.Derivations;

/// <summary>
/// Chapter 5: y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ with A (r×in) and B (out×r), W frozen. With h = x·Aᵀ (N×r), the linear rule
/// twice gives dB = s·dYᵀ·h and dh = s·dY·B, then dA = dhᵀ·x. At PEFT's initialisation B = 0, so dh = 0 and dA = 0,
/// but dB = s·dYᵀ·(x·Aᵀ) is not: the first step moves B, and from the second step on A moves too.
/// </summary>
public static class LoraDerivation
{
    private const int N = 3, In = 5, Out = 4, R = 2;
    private const double S = 2.0;   // the scale, α/r

    /// <summary>Checks dA and dB against finite differences and the library's autograd.</summary>
    public static string Check()
    {
        double[] x = GradCheck.Random(N * In, 11), w = GradCheck.Random(Out * In, 12);
        double[] a = GradCheck.Random(R * In, 13), b = GradCheck.Random(Out * R, 14);
        double[] dy = GradCheck.Random(N * Out, 15);
        var (da, db) = Backward(x, a, b, dy);
        double fd = Math.Max(
            GradCheck.MaxDiff(da, GradCheck.Numeric(v => GradCheck.Dot(Forward(x, w, v, b), dy), a)),
            GradCheck.MaxDiff(db, GradCheck.Numeric(v => GradCheck.Dot(Forward(x, w, a, v), dy), b)));

        var tx = GradCheck.Tensor(x, false, N, In);
        var tw = GradCheck.Tensor(w, false, Out, In);                 // frozen
        var ta = GradCheck.Tensor(a, true, R, In);
        var tb = GradCheck.Tensor(b, true, Out, R);
        Tensor low = Functional.Linear(Functional.Linear(tx, ta), tb);              // (x·Aᵀ)·Bᵀ
        Tensor y = Functional.Add(Functional.Linear(tx, tw), Functional.Scale(low, (float)S));
        GradCheck.Loss(y, dy).Backward();
        double lib = Math.Max(GradCheck.MaxDiff(da, ta.Grad), GradCheck.MaxDiff(db, tb.Grad));
        return GradCheck.Verdict("LoRA: dB = s·dYᵀ·(x·Aᵀ), dA = s·(dY·B)ᵀ·x", fd, lib)
            + (tw.HasGrad ? "; W got a gradient!" : "");
    }

    /// <summary>With B = 0: the norms of dA and dB, then of dA after one gradient step on B.</summary>
    public static string ZeroB()
    {
        double[] x = GradCheck.Random(N * In, 11), a = GradCheck.Random(R * In, 13), dy = GradCheck.Random(N * Out, 15);
        double[] b = new double[Out * R];
        var (da0, db0) = Backward(x, a, b, dy);
        for (int i = 0; i < b.Length; i++) b[i] -= 0.1 * db0[i];      // one SGD step, learning rate 0.1
        var (da1, _) = Backward(x, a, b, dy);
        return $"B = 0: |dA| = {Norm(da0):F4}, |dB| = {Norm(db0):F4}; after one step on B: |dA| = {Norm(da1):F4}";
    }

    private static double Norm(double[] v) => Math.Sqrt(v.Sum(e => e * e));

    private static double[] Forward(double[] x, double[] w, double[] a, double[] b)
    {
        var y = new double[N * Out];
        for (int n = 0; n < N; n++)
        {
            var h = new double[R];
            for (int r = 0; r < R; r++)
                for (int i = 0; i < In; i++) h[r] += x[n * In + i] * a[r * In + i];
            for (int o = 0; o < Out; o++)
            {
                double s = 0, low = 0;
                for (int i = 0; i < In; i++) s += x[n * In + i] * w[o * In + i];
                for (int r = 0; r < R; r++) low += h[r] * b[o * R + r];
                y[n * Out + o] = s + S * low;
            }
        }
        return y;
    }

    /// <summary>The derived gradients of the two factors.</summary>
    public static (double[] Da, double[] Db) Backward(double[] x, double[] a, double[] b, double[] dy)
    {
        var da = new double[R * In];
        var db = new double[Out * R];
        for (int n = 0; n < N; n++)
        {
            var h = new double[R];
            var dh = new double[R];
            for (int r = 0; r < R; r++)
                for (int i = 0; i < In; i++) h[r] += x[n * In + i] * a[r * In + i];           // h = x·Aᵀ
            for (int o = 0; o < Out; o++)
                for (int r = 0; r < R; r++)
                {
                    db[o * R + r] += S * dy[n * Out + o] * h[r];                             // dB = s·dYᵀ·h
                    dh[r] += S * dy[n * Out + o] * b[o * R + r];                             // dh = s·dY·B
                }
            for (int r = 0; r < R; r++)
                for (int i = 0; i < In; i++) da[r * In + i] += dh[r] * x[n * In + i];        // dA = dhᵀ·x
        }
        return (da, db);
    }
}
