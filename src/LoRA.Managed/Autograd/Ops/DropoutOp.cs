using LoRA.Managed.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// Inverted dropout: each element is kept with probability 1−p and scaled by 1/(1−p), so the
/// expectation is unchanged and evaluation needs no rescaling. <c>∂x += ∂y·mask</c>.
/// </summary>
internal sealed class DropoutOp : Op
{
    private Tensor _x = null!, _mask = null!;

    public override string Name => "dropout";

    public static Tensor Apply(Tensor x, float p, TorchGenerator generator)
    {
        if (!(p >= 0f && p < 1f)) throw new ArgumentOutOfRangeException(nameof(p), p, "dropout: p must be in [0, 1).");
        Tensor mask = Tape.NewTensor(x.Shape);
        Span<float> m = mask.Data;
        float keep = 1f / (1f - p);
        for (int i = 0; i < m.Length; i++) m[i] = generator.NextFloat() < p ? 0f : keep;
        Tensor y = Tape.NewTensor(x.Shape);
        TensorPrimitives.Multiply(x.Data, m, y.Data);
        if (Tape.ShouldRecord(x))
        {
            var op = Tape.Record<DropoutOp>(y);
            op._x = x; op._mask = mask;
        }
        return y;
    }

    public override void Backward()
    {
        if (!_x.RequiresGrad) return;
        Span<float> g = _x.EnsureGrad();
        TensorPrimitives.MultiplyAdd(Output.Grad, _mask.Data, g, g);
    }
}
