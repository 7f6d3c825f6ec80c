using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// Inverted dropout: each element is kept with probability 1−p and scaled by 1/(1−p), so the
/// expectation is unchanged and evaluation needs no rescaling. <c>∂x += ∂y·mask</c>.
/// </summary>
internal sealed class DropoutOp : Op
{
    private readonly Tensor _x;
    private readonly float[] _mask;

    private DropoutOp(Tensor y, Tensor x, float[] mask) : base(y) { _x = x; _mask = mask; }

    public override string Name => "dropout";

    public static Tensor Apply(Tensor x, float p, TorchGenerator generator)
    {
        if (!(p >= 0f && p < 1f)) throw new ArgumentOutOfRangeException(nameof(p), p, "dropout: p must be in [0, 1).");
        var mask = new float[x.Count];
        float keep = 1f / (1f - p);
        for (int i = 0; i < mask.Length; i++) mask[i] = generator.NextFloat() < p ? 0f : keep;
        var y = new Tensor(x.Shape);
        TensorPrimitives.Multiply(x.Data, mask, y.Data);
        if (Tape.ShouldRecord(x)) Tape.Current.Record(new DropoutOp(y, x, mask));
        return y;
    }

    public override void Backward()
    {
        if (!_x.RequiresGrad) return;
        Span<float> g = _x.EnsureGrad();
        TensorPrimitives.MultiplyAdd(Output.Grad, _mask, g, g);
    }
}
