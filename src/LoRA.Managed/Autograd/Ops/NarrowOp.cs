using LoRA.Managed.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// A slice of the last dimension, <c>x[..., start:start+length]</c> as a contiguous copy (how GPT-2 splits its fused
/// <c>c_attn</c> output into q, k and v). Backward adds the gradient back into that slice.
/// </summary>
internal sealed class NarrowOp : Op
{
    private Tensor _x = null!;
    private int _start;

    public override string Name => "narrow";

    public static Tensor Apply(Tensor x, int start, int length)
    {
        int last = x.Shape[^1];
        if (start < 0 || length < 0 || start + length > last)
            throw new ArgumentException($"narrow: [{start}, {start + length}) is outside the last dimension of " +
                $"{Shapes.Format(x.Shape)}.");
        Tensor y = Tape.NewTensorLike(x, length);
        int rows = last == 0 ? 0 : x.Count / last;
        ReadOnlySpan<float> src = x.Data;
        Span<float> dst = y.Data;
        for (int r = 0; r < rows; r++) src.Slice(r * last + start, length).CopyTo(dst.Slice(r * length, length));
        if (Tape.ShouldRecord(x))
        {
            var op = Tape.Record<NarrowOp>(y);
            op._x = x; op._start = start;
        }
        return y;
    }

    public override void Backward()
    {
        if (!_x.RequiresGrad) return;
        int last = _x.Shape[^1], length = Output.Shape[^1], rows = last == 0 ? 0 : _x.Count / last;
        Span<float> dx = _x.EnsureGrad();
        ReadOnlySpan<float> dy = Output.Grad;
        for (int r = 0; r < rows; r++)
        {
            Span<float> g = dx.Slice(r * last + _start, length);
            TensorPrimitives.Add(g, dy.Slice(r * length, length), g);
        }
    }
}
