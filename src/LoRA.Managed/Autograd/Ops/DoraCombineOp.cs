using LoRA.Managed.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

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
    private Tensor _z = null!, _u = null!, _m = null!, _n = null!, _g = null!;
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
        // g = m / n once per column (kept for backward), then whole rows with vector kernels.
        Tensor gain = Tape.NewTensor([outF]);
        TensorPrimitives.Divide(magnitude.Data, norm.Data, gain.Data);
        ReadOnlySpan<float> g = gain.Data;
        Span<float> yd = y.Data;
        for (int i = 0; i < rows; i++)
        {
            Span<float> yr = yd.Slice(i * outF, outF);
            ReadOnlySpan<float> zr = z.Data.Slice(i * outF, outF), ur = u.Data.Slice(i * outF, outF);
            if (residual is null)
            {
                // g⊙(z + s·u)
                TensorPrimitives.MultiplyAdd(ur, scale, zr, yr);
                TensorPrimitives.Multiply(yr, g, yr);
            }
            else
            {
                // r + ((g − 1)⊙z + g⊙(s·u)), PEFT's order: the DoRA term, then added to the base output.
                TensorPrimitives.Multiply(ur, scale, yr);
                TensorPrimitives.Multiply(yr, g, yr);
                TensorPrimitives.FusedMultiplyAdd(g, zr, yr, yr);
                TensorPrimitives.Subtract(yr, zr, yr);
                TensorPrimitives.Add(residual.Data.Slice(i * outF, outF), yr, yr);
            }
            if (bias is not null) TensorPrimitives.Add(yr, bias.Data, yr);
        }
        if (Tape.ShouldRecord(z, u, magnitude) || Tape.ShouldRecord(residual ?? z, bias))
        {
            var op = Tape.Record<DoraCombineOp>(y);
            op._r = residual; op._z = z; op._u = u; op._m = magnitude; op._n = norm; op._g = gain; op._s = scale;
            op._bias = bias;
        }
        return y;
    }

    public override void Backward()
    {
        ReadOnlySpan<float> grad = Output.Grad, g = _g.Data;
        int outF = _z.Shape[^1], rows = outF == 0 ? 0 : _z.Count / outF;
        // z, u and r are fresh activations whose gradients are usually still zero: written, not added to zeros.
        if (_r is { RequiresGrad: true }) AddOp.Accumulate(_r, grad);
        Span<float> gz = OverwriteOrAdd(_z, out bool zNew), gu = OverwriteOrAdd(_u, out bool uNew);
        Span<float> gm = GradOf(_m), gb = _bias is null ? default : GradOf(_bias);
        GradientPool pool = GradientPool.Current;
        // Per column: ∂z factor (g − 1 with a residual, else g), ∂u factor g·s; per row scratch z + s·u; ∂m sums.
        float[] zFactor = pool.Rent(outF), uFactor = pool.Rent(outF), sum = pool.Rent(outF),
            acc = pool.RentZeroed(outF);
        TensorPrimitives.Subtract(g, _r is null ? 0f : 1f, zFactor);
        TensorPrimitives.Multiply(g, _s, uFactor);
        for (int i = 0; i < rows; i++)
        {
            ReadOnlySpan<float> G = grad.Slice(i * outF, outF);
            if (!gz.IsEmpty) MultiplyInto(gz.Slice(i * outF, outF), G, zFactor, zNew);
            if (!gu.IsEmpty) MultiplyInto(gu.Slice(i * outF, outF), G, uFactor, uNew);
            if (!gm.IsEmpty)
            {
                TensorPrimitives.MultiplyAdd(_u.Data.Slice(i * outF, outF), _s, _z.Data.Slice(i * outF, outF), sum);
                TensorPrimitives.FusedMultiplyAdd(G, sum, acc, acc);
            }
            if (!gb.IsEmpty) AddInto(gb, G);
        }
        // ∂m = Σᵢ G⊙(z + s·u) / n: the norm is a constant.
        if (!gm.IsEmpty) { TensorPrimitives.Divide(acc, _n.Data, acc); AddInto(gm, acc); }
        pool.Return(zFactor); pool.Return(uFactor); pool.Return(sum); pool.Return(acc);
    }

    private static void AddInto(Span<float> dst, ReadOnlySpan<float> src) => TensorPrimitives.Add(dst, src, dst);

    // The gradient's buffer, and whether it is still zero (Tensor.GradForOverwrite); empty when x takes none.
    private static Span<float> OverwriteOrAdd(Tensor x, out bool overwrite)
    {
        overwrite = false;
        return x.RequiresGrad ? x.GradForOverwrite(out overwrite) : Span<float>.Empty;
    }

    // d = G⊙f, or d += G⊙f.
    private static void MultiplyInto(Span<float> d, ReadOnlySpan<float> g, ReadOnlySpan<float> f, bool overwrite)
    {
        if (overwrite) TensorPrimitives.Multiply(g, f, d);
        else TensorPrimitives.FusedMultiplyAdd(g, f, d, d);
    }
}
