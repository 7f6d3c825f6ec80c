namespace LoRA.Managed.Kernels;

/// <summary>
/// Rotary position embedding (Su et al. 2021, "RoFormer", eq. 34) in Hugging Face's rotate-half layout: a head
/// vector of D values is split into halves x₁ = x[0..D/2), x₂ = x[D/2..D), and at position p with angle
/// θᵢ = p·ωᵢ, <c>y₁ = x₁·cos θ − x₂·sin θ</c>, <c>y₂ = x₂·cos θ + x₁·sin θ</c>
/// (<c>q·cos + rotate_half(q)·sin</c> in <c>apply_rotary_pos_emb</c>). The backward is the inverse rotation
/// (the transpose): <c>∂x₁ += ∂y₁·cos + ∂y₂·sin</c>, <c>∂x₂ += ∂y₂·cos − ∂y₁·sin</c>.
/// </summary>
/// <remarks>
/// x is laid out (B, T, H, D) row-major; the token at time t has position <c>start + t</c>. The tables hold
/// cos θ and sin θ per (position, i), (positions, D/2) row-major, already multiplied by any attention scaling.
/// </remarks>
public static class RopeKernel
{
    /// <summary>Rotates x (B, T, H, D) into y (may alias x).</summary>
    /// <exception cref="ArgumentException">The spans do not fit the shape, D is odd, or a position is past the
    /// tables.</exception>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, int batch, int time, int heads, int headDim,
        int start, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin) =>
        Run(x, y, batch, time, heads, headDim, start, cos, sin, backward: false);

    /// <summary>Accumulates <c>dx += Rᵀ·dy</c> for dy (B, T, H, D).</summary>
    /// <exception cref="ArgumentException">As <see cref="Forward"/>.</exception>
    public static void Backward(ReadOnlySpan<float> dy, Span<float> dx, int batch, int time, int heads, int headDim,
        int start, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin) =>
        Run(dy, dx, batch, time, heads, headDim, start, cos, sin, backward: true);

    private static void Run(ReadOnlySpan<float> x, Span<float> y, int batch, int time, int heads, int headDim,
        int start, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, bool backward)
    {
        int half = headDim / 2;
        long count = (long)batch * time * heads * headDim;
        if (headDim <= 0 || headDim % 2 != 0 || batch < 0 || time < 0 || heads < 0 || start < 0 || x.Length != count
            || y.Length != count)
            throw new ArgumentException($"RopeKernel: spans of {x.Length} and {y.Length} do not fit ({batch}, " +
                $"{time}, {heads}, {headDim}) with an even head size.");
        if (cos.Length != sin.Length || cos.Length % half != 0
            || (time > 0 && (long)(start + time) * half > cos.Length))
            throw new ArgumentException($"RopeKernel: positions {start}..{start + time - 1} need tables of " +
                $"{(long)(start + time) * half} values, got {cos.Length}.");
        for (int bt = 0; bt < batch * time; bt++)
        {
            int p = start + bt % time;
            ReadOnlySpan<float> c = cos.Slice(p * half, half), s = sin.Slice(p * half, half);
            for (int h = 0; h < heads; h++)
            {
                int o = (bt * heads + h) * headDim;
                Span<float> y1 = y.Slice(o, half), y2 = y.Slice(o + half, half);
                ReadOnlySpan<float> x1 = x.Slice(o, half), x2 = x.Slice(o + half, half);
                // Plain products and one sum per element (no fused multiply-add), rounded as PyTorch's
                // q·cos + rotate_half(q)·sin; both halves are read before either is written, so y may alias x.
                if (!backward)
                    for (int i = 0; i < half; i++)
                    {
                        float a = x1[i], b = x2[i];
                        y1[i] = a * c[i] - b * s[i];
                        y2[i] = b * c[i] + a * s[i];
                    }
                else
                    for (int i = 0; i < half; i++)
                    {
                        float a = x1[i], b = x2[i];
                        y1[i] += a * c[i] + b * s[i];
                        y2[i] += b * c[i] - a * s[i];
                    }
            }
        }
    }
}
