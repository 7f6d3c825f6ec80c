using LoRA.Managed.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>Elementwise <c>y = a ⊙ b</c> for tensors of one shape; <c>∂a += ∂y ⊙ b</c>, <c>∂b += ∂y ⊙ a</c>.</summary>
internal sealed class MulOp : Op
{
    private Tensor _a = null!, _b = null!;

    public override string Name => "mul";

    public static Tensor Apply(Tensor a, Tensor b)
    {
        Shapes.RequireSame(a, b, "mul");
        Tensor y = Tape.NewTensor(a.Shape);
        TensorPrimitives.Multiply(a.Data, b.Data, y.Data);
        if (Tape.ShouldRecord(a, b))
        {
            var op = Tape.Record<MulOp>(y);
            op._a = a; op._b = b;
        }
        return y;
    }

    public override void Backward()
    {
        ReadOnlySpan<float> dy = Output.Grad;
        if (_a.RequiresGrad) { Span<float> g = _a.EnsureGrad(); TensorPrimitives.FusedMultiplyAdd(dy, _b.Data, g, g); }
        if (_b.RequiresGrad) { Span<float> g = _b.EnsureGrad(); TensorPrimitives.FusedMultiplyAdd(dy, _a.Data, g, g); }
    }
}
