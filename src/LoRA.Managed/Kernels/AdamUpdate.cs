using System.Runtime.Intrinsics;

namespace LoRA.Managed.Kernels;

/// <summary>
/// One fused SIMD pass of Adam over a parameter span, exactly PyTorch's formulation
/// (<c>torch.optim.Adam</c>, single-tensor path; Kingma &amp; Ba 2015, Algorithm 1):
/// <code>
/// g ← g + λ·θ                      (L2 weight decay, Adam only)
/// m ← m + (1−β₁)·(g − m)           (torch: exp_avg.lerp_(grad, 1 − β₁))
/// v ← β₂·v + (1−β₂)·g·g             (torch: exp_avg_sq.mul_(β₂).addcmul_(grad, grad, 1 − β₂))
/// θ ← θ − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)
/// </code>
/// The operations are evaluated in PyTorch's order, and 1−β is computed in double before rounding
/// to float as PyTorch does with its Python-float hyper-parameters, so results track PyTorch closely.
/// AdamW's decoupled decay (<c>θ ← θ·(1 − lr·λ)</c>, Loshchilov &amp; Hutter 2019) is applied by the
/// caller's <c>decoupledDecay</c> factor before the update, in the same pass.
/// </summary>
public static class AdamUpdate
{
    /// <summary>Updates <paramref name="param"/>, <paramref name="m"/> and <paramref name="v"/> in place.</summary>
    /// <param name="param">θ.</param>
    /// <param name="grad">g (not modified).</param>
    /// <param name="m">First-moment estimate.</param>
    /// <param name="v">Second-moment estimate.</param>
    /// <param name="stepSize">lr / (1 − β₁ᵗ).</param>
    /// <param name="oneMinusBeta1">1 − β₁.</param>
    /// <param name="beta2">β₂.</param>
    /// <param name="oneMinusBeta2">1 − β₂.</param>
    /// <param name="bias2Sqrt">√(1 − β₂ᵗ).</param>
    /// <param name="eps">ε.</param>
    /// <param name="l2">λ of Adam's L2 decay added to the gradient (0 for none).</param>
    /// <param name="decoupledDecay">Factor θ is multiplied by first (1 − lr·λ for AdamW, 1 for Adam).</param>
    public static void Step(Span<float> param, ReadOnlySpan<float> grad, Span<float> m, Span<float> v,
        float stepSize, float oneMinusBeta1, float beta2, float oneMinusBeta2, float bias2Sqrt, float eps, float l2, float decoupledDecay)
    {
        int n = param.Length;
        if (grad.Length != n || m.Length != n || v.Length != n)
            throw new ArgumentException($"AdamUpdate.Step: lengths differ: param {n}, grad {grad.Length}, m {m.Length}, v {v.Length}.");
        float omb1 = oneMinusBeta1, omb2 = oneMinusBeta2;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vomb1 = Vector512.Create(omb1);
            var vb2 = Vector512.Create(beta2); var vomb2 = Vector512.Create(omb2);
            var vstep = Vector512.Create(stepSize); var vbc2 = Vector512.Create(bias2Sqrt);
            var veps = Vector512.Create(eps); var vl2 = Vector512.Create(l2); var vdec = Vector512.Create(decoupledDecay);
            for (; i <= n - 16; i += 16)
            {
                var p = Vector512.Create(param.Slice(i)) * vdec;
                var g = Vector512.Create(grad.Slice(i)) + vl2 * Vector512.Create(param.Slice(i));
                var m0 = Vector512.Create(m.Slice(i));
                var mi = m0 + vomb1 * (g - m0);
                var vi = vb2 * Vector512.Create(v.Slice(i)) + vomb2 * g * g;
                var denom = Vector512.Sqrt(vi) / vbc2 + veps;
                p -= vstep * (mi / denom);
                mi.CopyTo(m.Slice(i)); vi.CopyTo(v.Slice(i)); p.CopyTo(param.Slice(i));
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vomb1 = Vector256.Create(omb1);
            var vb2 = Vector256.Create(beta2); var vomb2 = Vector256.Create(omb2);
            var vstep = Vector256.Create(stepSize); var vbc2 = Vector256.Create(bias2Sqrt);
            var veps = Vector256.Create(eps); var vl2 = Vector256.Create(l2); var vdec = Vector256.Create(decoupledDecay);
            for (; i <= n - 8; i += 8)
            {
                var p = Vector256.Create(param.Slice(i)) * vdec;
                var g = Vector256.Create(grad.Slice(i)) + vl2 * Vector256.Create(param.Slice(i));
                var m0 = Vector256.Create(m.Slice(i));
                var mi = m0 + vomb1 * (g - m0);
                var vi = vb2 * Vector256.Create(v.Slice(i)) + vomb2 * g * g;
                var denom = Vector256.Sqrt(vi) / vbc2 + veps;
                p -= vstep * (mi / denom);
                mi.CopyTo(m.Slice(i)); vi.CopyTo(v.Slice(i)); p.CopyTo(param.Slice(i));
            }
        }
        for (; i < n; i++)
        {
            float p0 = param[i];
            float g = grad[i] + l2 * p0;
            float mi = m[i] + omb1 * (g - m[i]);
            float vi = beta2 * v[i] + omb2 * g * g;
            float denom = MathF.Sqrt(vi) / bias2Sqrt + eps;
            m[i] = mi; v[i] = vi;
            param[i] = p0 * decoupledDecay - stepSize * (mi / denom);
        }
    }
}
