using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Autograd;

/// <summary>
/// Central finite differences against autograd: for each checked element θᵢ,
/// <c>(L(θ + εeᵢ) − L(θ − εeᵢ)) / 2ε</c> must match the gradient backward accumulated.
/// Losses are evaluated in float, so ε and the tolerance are chosen for float32 (values near 1).
/// </summary>
internal static class GradCheck
{
    /// <summary>
    /// Reduces any tensor to a scalar with fixed random weights, <c>L = Σ y ⊙ R</c>, built from
    /// differentiable ops (reshape + matmul) so every op upstream receives a non-uniform gradient.
    /// </summary>
    public static Tensor WeightedSum(Tensor y, int seed = 1234) =>
        Functional.MatMul(Functional.Reshape(y, 1, y.Count), Weights(y.Count, seed));

    /// <summary><see cref="WeightedSum"/>'s R, (count, 1), uniform in [−1, 1): the gradient it sends back to
    /// y.</summary>
    public static Tensor Weights(int count, int seed = 1234)
    {
        var r = new TorchGenerator((ulong)seed).Rand(count, 1);
        for (int i = 0; i < r.Count; i++) r[i] = 2 * r[i] - 1;
        return r;
    }

    public static void Check(Func<Tensor> loss, IEnumerable<Tensor> inputs, float eps = 1e-2f, float tol = 2e-3f,
        int maxPerTensor = 64)
    {
        var list = inputs.ToList();
        foreach (var t in list) t.ZeroGrad();
        loss().Backward();
        var analytic = list.Select(t => t.HasGrad ? t.Grad.ToArray() : new float[t.Count]).ToList();
        for (int ti = 0; ti < list.Count; ti++)
        {
            Tensor t = list[ti];
            int stride = Math.Max(1, t.Count / maxPerTensor);
            for (int i = 0; i < t.Count; i += stride)
            {
                float saved = t[i];
                float plus, minus;
                using (Tape.NoGrad())
                {
                    t[i] = saved + eps; plus = loss().Item();
                    t[i] = saved - eps; minus = loss().Item();
                }
                t[i] = saved;
                double numeric = ((double)plus - minus) / (2 * eps);
                double a = analytic[ti][i];
                Assert.That(a, Is.EqualTo(numeric).Within(tol + 1e-2 * Math.Abs(numeric)),
                    $"input {ti} {Shapes.Format(t.Shape)} element {i}: analytic {a}, numeric {numeric}");
            }
        }
    }

    public static Tensor Param(TorchGenerator g, params int[] shape)
    {
        var t = new Tensor(shape) { RequiresGrad = true };
        g.FillUniform(t.Data, -1f, 1f);
        return t;
    }
}
