using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary><c>y = a + b</c> for tensors of one shape; <c>∂a += ∂y</c>, <c>∂b += ∂y</c>.</summary>
internal sealed class AddOp : Op
{
    private readonly Tensor _a, _b;

    private AddOp(Tensor y, Tensor a, Tensor b) : base(y) { _a = a; _b = b; }

    public override string Name => "add";

    public static Tensor Apply(Tensor a, Tensor b)
    {
        Shapes.RequireSame(a, b, "add");
        var y = new Tensor(a.Shape);
        TensorPrimitives.Add(a.Data, b.Data, y.Data);
        if (Tape.ShouldRecord(a, b)) Tape.Current.Record(new AddOp(y, a, b));
        return y;
    }

    public override void Backward()
    {
        ReadOnlySpan<float> dy = Output.Grad;
        if (_a.RequiresGrad) { Span<float> g = _a.EnsureGrad(); TensorPrimitives.Add(g, dy, g); }
        if (_b.RequiresGrad) { Span<float> g = _b.EnsureGrad(); TensorPrimitives.Add(g, dy, g); }
    }
}
