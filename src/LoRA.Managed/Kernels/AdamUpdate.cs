using System.Runtime.Intrinsics;

namespace LoRA.Managed.Kernels;

/// <summary>
/// One fused SIMD pass of Adam over a parameter span, exactly PyTorch's formulation
/// (<c>torch.optim.Adam</c>, single-tensor path; Kingma &amp; Ba 2015, Algorithm 1):
/// <code>
/// g ← g + λ·θ                      (L2 weight decay, Adam only)
/// m ← β₁·m + (1−β₁)·g
/// v ← β₂·v + (1−β₂)·g²
/// θ ← θ − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)
/// </code>
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
    /// <param name="beta1">β₁.</param>
    /// <param name="beta2">β₂.</param>
    /// <param name="invBias2Sqrt">1 / √(1 − β₂ᵗ).</param>
    /// <param name="eps">ε.</param>
    /// <param name="l2">λ of Adam's L2 decay added to the gradient (0 for none).</param>
    /// <param name="decoupledDecay">Factor θ is multiplied by first (1 − lr·λ for AdamW, 1 for Adam).</param>
    public static void Step(Span<float> param, ReadOnlySpan<float> grad, Span<float> m, Span<float> v,
        float stepSize, float beta1, float beta2, float invBias2Sqrt, float eps, float l2, float decoupledDecay)
    {
        int n = param.Length;
        if (grad.Length != n || m.Length != n || v.Length != n)
            throw new ArgumentException($"AdamUpdate.Step: lengths differ: param {n}, grad {grad.Length}, m {m.Length}, v {v.Length}.");
        float omb1 = 1f - beta1, omb2 = 1f - beta2;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vb1 = Vector512.Create(beta1); var vomb1 = Vector512.Create(omb1);
            var vb2 = Vector512.Create(beta2); var vomb2 = Vector512.Create(omb2);
            var vstep = Vector512.Create(stepSize); var vinv = Vector512.Create(invBias2Sqrt);
            var veps = Vector512.Create(eps); var vl2 = Vector512.Create(l2); var vdec = Vector512.Create(decoupledDecay);
            for (; i <= n - 16; i += 16)
            {
                var p = Vector512.Create(param.Slice(i)) * vdec;
                var g = Vector512.Create(grad.Slice(i)) + vl2 * Vector512.Create(param.Slice(i));
                var mi = vb1 * Vector512.Create(m.Slice(i)) + vomb1 * g;
                var vi = vb2 * Vector512.Create(v.Slice(i)) + vomb2 * (g * g);
                var denom = Vector512.Sqrt(vi) * vinv + veps;
                p -= vstep * (mi / denom);
                mi.CopyTo(m.Slice(i)); vi.CopyTo(v.Slice(i)); p.CopyTo(param.Slice(i));
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vb1 = Vector256.Create(beta1); var vomb1 = Vector256.Create(omb1);
            var vb2 = Vector256.Create(beta2); var vomb2 = Vector256.Create(omb2);
            var vstep = Vector256.Create(stepSize); var vinv = Vector256.Create(invBias2Sqrt);
            var veps = Vector256.Create(eps); var vl2 = Vector256.Create(l2); var vdec = Vector256.Create(decoupledDecay);
            for (; i <= n - 8; i += 8)
            {
                var p = Vector256.Create(param.Slice(i)) * vdec;
                var g = Vector256.Create(grad.Slice(i)) + vl2 * Vector256.Create(param.Slice(i));
                var mi = vb1 * Vector256.Create(m.Slice(i)) + vomb1 * g;
                var vi = vb2 * Vector256.Create(v.Slice(i)) + vomb2 * (g * g);
                var denom = Vector256.Sqrt(vi) * vinv + veps;
                p -= vstep * (mi / denom);
                mi.CopyTo(m.Slice(i)); vi.CopyTo(v.Slice(i)); p.CopyTo(param.Slice(i));
            }
        }
        for (; i < n; i++)
        {
            float p0 = param[i];
            float g = grad[i] + l2 * p0;
            float mi = beta1 * m[i] + omb1 * g;
            float vi = beta2 * v[i] + omb2 * (g * g);
            float denom = MathF.Sqrt(vi) * invBias2Sqrt + eps;
            m[i] = mi; v[i] = vi;
            param[i] = p0 * decoupledDecay - stepSize * (mi / denom);
        }
    }
}
