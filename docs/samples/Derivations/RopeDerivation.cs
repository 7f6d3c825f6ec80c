using LoRA.Managed.Autograd;
using LoRA.Managed.Models;

namespace LoRA.Managed.Samples.Derivations;

/// <summary>
/// Chapter 9: rotary position embedding rotates each pair (x₁ᵢ, x₂ᵢ) of a head vector at position p by θ = p·ωᵢ.
/// A rotation's inverse is its transpose, so the backward is the rotation by −θ: dx₁ = dy₁·cos θ + dy₂·sin θ,
/// dx₂ = dy₂·cos θ − dy₁·sin θ. And since R(α)ᵀR(β) = R(β − α), the score ⟨R(m·ω)q, R(n·ω)k⟩ depends on m − n only.
/// </summary>
public static class RopeDerivation
{
    private const int D = 8, Half = D / 2;
    private const double Theta = 10000;

    /// <summary>Checks the backward against finite differences and the library's RoPE, then the relative-position
    /// property.</summary>
    public static string Check()
    {
        const int time = 3, start = 5;
        double[] x = GradCheck.Random(time * D, 41), dy = GradCheck.Random(time * D, 42);
        double[] dx = Backward(dy, time, start);
        double fd = GradCheck.MaxDiff(dx, GradCheck.Numeric(v => GradCheck.Dot(Forward(v, time, start), dy), x));
        var rope = new RotaryEmbedding(D, Theta, null);
        rope.Ensure(start + time);
        var tx = GradCheck.Tensor(x, true, 1, time, 1, D);                 // (B, T, H, D)
        GradCheck.Loss(Functional.Rope(tx, rope.Cos, rope.Sin, start), dy).Backward();
        string backward = GradCheck.Verdict("RoPE: dx = R(−p·ω)·dy, the inverse rotation", fd,
            GradCheck.MaxDiff(dx, tx.Grad));

        double[] q = GradCheck.Random(D, 43), k = GradCheck.Random(D, 44);
        double near = Score(q, 7, k, 3), far = Score(q, 107, k, 103);        // both 4 positions apart
        return backward + "\n" +
               $"RoPE: q at 7 · k at 3 = {near:F6}; q at 107 · k at 103 = {far:F6} (only m − n counts)";
    }

    private static double Omega(int i) => Math.Pow(Theta, -2.0 * i / D);

    private static double[] Rotate(double[] x, int offset, int position, int sign, double[] into)
    {
        for (int i = 0; i < Half; i++)
        {
            double c = Math.Cos(position * Omega(i)), s = sign * Math.Sin(position * Omega(i));
            double a = x[offset + i], b = x[offset + Half + i];
            into[offset + i] = a * c - b * s;
            into[offset + Half + i] = b * c + a * s;
        }
        return into;
    }

    private static double[] Forward(double[] x, int time, int start)
    {
        var y = new double[x.Length];
        for (int t = 0; t < time; t++) Rotate(x, t * D, start + t, +1, y);
        return y;
    }

    /// <summary>The derived backward: each position's rotation, reversed.</summary>
    public static double[] Backward(double[] dy, int time, int start)
    {
        var dx = new double[dy.Length];
        for (int t = 0; t < time; t++) Rotate(dy, t * D, start + t, -1, dx);
        return dx;
    }

    private static double Score(double[] q, int m, double[] k, int n)
    {
        double[] rq = Rotate(q, 0, m, +1, new double[D]), rk = Rotate(k, 0, n, +1, new double[D]);
        return GradCheck.Dot(rq, rk);
    }
}
