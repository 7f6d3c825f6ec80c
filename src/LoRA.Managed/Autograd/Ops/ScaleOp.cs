using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary><c>y = s·x</c> for a constant s; <c>∂x += s·∂y</c>.</summary>
internal sealed class ScaleOp : Op
{
    private readonly Tensor _x;
    private readonly float _s;

    private ScaleOp(Tensor y, Tensor x, float s) : base(y) { _x = x; _s = s; }

    public override string Name => "scale";

    public static Tensor Apply(Tensor x, float s)
    {
        var y = new Tensor(x.Shape);
        TensorPrimitives.Multiply(x.Data, s, y.Data);
        if (Tape.ShouldRecord(x)) Tape.Current.Record(new ScaleOp(y, x, s));
        return y;
    }

    public override void Backward()
    {
        if (!_x.RequiresGrad) return;
        Span<float> g = _x.EnsureGrad();
        TensorPrimitives.MultiplyAdd(Output.Grad, _s, g, g);
    }
}
