using LoRA.Managed.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Autograd.Ops;

/// <summary><c>y = s·x</c> for a constant s; <c>∂x += s·∂y</c>.</summary>
internal sealed class ScaleOp : Op
{
    private Tensor _x = null!;
    private float _s;

    public override string Name => "scale";

    public static Tensor Apply(Tensor x, float s)
    {
        Tensor y = Tape.NewTensor(x.Shape);
        TensorPrimitives.Multiply(x.Data, s, y.Data);
        if (Tape.ShouldRecord(x))
        {
            var op = Tape.Record<ScaleOp>(y);
            op._x = x; op._s = s;
        }
        return y;
    }

    public override void Backward()
    {
        if (!_x.RequiresGrad) return;
        Span<float> g = _x.EnsureGrad();
        TensorPrimitives.MultiplyAdd(Output.Grad, _s, g, g);
    }
}
