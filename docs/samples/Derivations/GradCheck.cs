using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Samples.Derivations;

/// <summary>
/// The tools every derivation's check uses: random inputs, central finite differences in double precision, the
/// scalar loss L = Σ y ⊙ R (so the upstream gradient dY = R is not uniform), and the one-line verdict the docs
/// tests read.
/// </summary>
public static class GradCheck
{
    /// <summary>n uniform values in [−1, 1) from a seeded generator, widened to double.</summary>
    public static double[] Random(int n, ulong seed)
    {
        var f = new float[n];
        new TorchGenerator(seed).FillUniform(f, -1f, 1f);
        return f.Select(v => (double)v).ToArray();
    }

    /// <summary>
    /// ∂f/∂xᵢ ≈ (f(x + h·eᵢ) − f(x − h·eᵢ)) / 2h for every i, in double: the error is O(h²) from the formula and
    /// O(ε/h) from rounding, both far below the tolerances used here at h = 10⁻⁵.
    /// </summary>
    public static double[] Numeric(Func<double[], double> f, double[] x, double h = 1e-5)
    {
        var g = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            double keep = x[i];
            x[i] = keep + h;
            double up = f(x);
            x[i] = keep - h;
            double down = f(x);
            x[i] = keep;
            g[i] = (up - down) / (2 * h);
        }
        return g;
    }

    /// <summary>Σ y ⊙ r.</summary>
    public static double Dot(double[] y, double[] r)
    {
        double s = 0;
        for (int i = 0; i < y.Length; i++) s += y[i] * r[i];
        return s;
    }

    /// <summary>max |a − b|.</summary>
    public static double MaxDiff(ReadOnlySpan<double> a, ReadOnlySpan<float> b)
    {
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }

    /// <summary>max |a − b|.</summary>
    public static double MaxDiff(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }

    /// <summary>A float tensor holding <paramref name="values"/>.</summary>
    public static Tensor Tensor(double[] values, bool requiresGrad, params int[] shape) =>
        new(values.Select(v => (float)v).ToArray(), shape) { RequiresGrad = requiresGrad };

    /// <summary>The library's scalar L = Σ y ⊙ R, as a (1, 1) product: reshape y to a row and R to a column.</summary>
    public static Tensor Loss(Tensor y, double[] r) =>
        Functional.MatMul(Functional.Reshape(y, 1, y.Count), Tensor(r, false, r.Length, 1));

    /// <summary>
    /// "name: formula; finite differences agree to &lt; 1e-6, the library's backward to &lt; 1e-4", or FAIL with the
    /// errors: the derivation against finite differences of the double-precision forward, and against the library's
    /// float32 autograd.
    /// </summary>
    public static string Verdict(string name, double finiteDifferenceError, double libraryError)
    {
        bool ok = finiteDifferenceError < 1e-6 && libraryError < 1e-4;
        return ok
            ? $"{name}: finite differences agree to < 1e-6, the library's backward to < 1e-4"
            : $"{name}: FAIL (finite differences {finiteDifferenceError:E2}, library {libraryError:E2})";
    }
}
