using LoRA.Managed.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Autograd.Ops;

/// <summary><c>y = a + b</c> for tensors of one shape; <c>∂a += ∂y</c>, <c>∂b += ∂y</c>.</summary>
internal sealed class AddOp : Op
{
    private Tensor _a = null!, _b = null!;

    public override string Name => "add";

    public static Tensor Apply(Tensor a, Tensor b)
    {
        Shapes.RequireSame(a, b, "add");
        Tensor y = Tape.NewTensor(a.Shape);
        TensorPrimitives.Add(a.Data, b.Data, y.Data);
        if (Tape.ShouldRecord(a, b))
        {
            var op = Tape.Record<AddOp>(y);
            op._a = a; op._b = b;
        }
        return y;
    }

    public override void Backward()
    {
        ReadOnlySpan<float> dy = Output.Grad;
        if (_a.RequiresGrad) { Span<float> g = _a.EnsureGrad(); TensorPrimitives.Add(g, dy, g); }
        if (_b.RequiresGrad) { Span<float> g = _b.EnsureGrad(); TensorPrimitives.Add(g, dy, g); }
    }
}
