using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// DoRA's output (Liu et al. 2024, eq. 5 with the norm detached as in §4.3; PEFT's <c>DoraLinearLayer.forward</c>),
/// per column j with gⱼ = mⱼ / nⱼ: <c>out = r + (g − 1)⊙z + g⊙(s·u) + b</c>, where z = x'·Wᵀ is the base product on
/// the (dropped-out) input, u = (x'·Aᵀ)·Bᵀ the low-rank product, r the full base output W·x + b when the adapter sees a
/// dropped-out input, and b an optional bias. Without r (no dropout) the output is <c>g⊙(z + s·u) + b</c>, which is
/// PEFT's <c>base + (g − 1)⊙(base − b) + g⊙s·u</c> without computing W·x twice.
/// Backward, with G = ∂out: <c>∂r += G</c>, <c>∂z += (g − 1 or g)⊙G</c>, <c>∂u += s·g⊙G</c>, <c>∂b += Σᵢ G</c> and
/// <c>∂mⱼ += Σᵢ Gᵢⱼ(zᵢⱼ + s·uᵢⱼ) / nⱼ</c>; the norm n is a constant (detached), so no gradient reaches it.
/// </summary>
internal sealed class DoraCombineOp : Op
{
    private Tensor? _r, _bias;
    private Tensor _z = null!, _u = null!, _m = null!, _n = null!;
    private float _s;

    public override string Name => "dora_combine";

    /// <summary>Computes the output; <paramref name="norm"/> (out) is read as a constant.</summary>
    public static Tensor Apply(Tensor? residual, Tensor z, Tensor u, Tensor magnitude, Tensor norm, float scale,
        Tensor? bias)
    {
        Shapes.RequireSame(z, u, "dora_combine");
        if (residual is not null) Shapes.RequireSame(z, residual, "dora_combine");
        int outF = z.Shape[^1];
        if (magnitude.Count != outF || norm.Count != outF || (bias is not null && bias.Count != outF))
            throw new ArgumentException($"dora_combine: magnitude {Shapes.Format(magnitude.Shape)}, norm " +
                $"{Shapes.Format(norm.Shape)} and bias must have the {outF} columns of {Shapes.Format(z.Shape)}.");
        int rows = outF == 0 ? 0 : z.Count / outF;
        Tensor y = Tape.NewTensor(z.Shape);
        ReadOnlySpan<float> zd = z.Data, ud = u.Data, m = magnitude.Data, n = norm.Data;
        ReadOnlySpan<float> rd = residual is null ? default : residual.Data, b = bias is null ? default : bias.Data;
        Span<float> yd = y.Data;
        for (int i = 0; i < rows; i++)
        {
            int o = i * outF;
            for (int j = 0; j < outF; j++)
            {
                float g = m[j] / n[j];
                // PEFT's order: (g − 1)·base + g·lora·scaling, then added to the base output.
                float v = residual is null
                    ? g * (zd[o + j] + ud[o + j] * scale)
                    : rd[o + j] + ((g - 1f) * zd[o + j] + g * ud[o + j] * scale);
                yd[o + j] = bias is null ? v : v + b[j];
            }
        }
        if (Tape.ShouldRecord(z, u, magnitude) || (residual?.RequiresGrad ?? false) || (bias?.RequiresGrad ?? false))
        {
            var op = Tape.Record<DoraCombineOp>(y);
            op._r = residual; op._z = z; op._u = u; op._m = magnitude; op._n = norm; op._s = scale; op._bias = bias;
        }
        return y;
    }

    public override void Backward()
    {
        ReadOnlySpan<float> grad = Output.Grad, zd = _z.Data, ud = _u.Data, m = _m.Data, n = _n.Data;
        int outF = _z.Shape[^1], rows = outF == 0 ? 0 : _z.Count / outF;
        Span<float> gr = _r is null ? default : GradOf(_r), gz = GradOf(_z), gu = GradOf(_u);
        Span<float> gm = GradOf(_m), gb = _bias is null ? default : GradOf(_bias);
        float shift = _r is null ? 0f : 1f;
        for (int i = 0; i < rows; i++)
        {
            int o = i * outF;
            for (int j = 0; j < outF; j++)
            {
                float G = grad[o + j], g = m[j] / n[j];
                if (!gr.IsEmpty) gr[o + j] += G;
                if (!gz.IsEmpty) gz[o + j] += (g - shift) * G;
                if (!gu.IsEmpty) gu[o + j] += g * _s * G;
                if (!gm.IsEmpty) gm[j] += G * (zd[o + j] + ud[o + j] * _s) / n[j];
                if (!gb.IsEmpty) gb[j] += G;
            }
        }
    }
}
