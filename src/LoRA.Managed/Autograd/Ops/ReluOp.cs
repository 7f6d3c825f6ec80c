using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary><c>y = max(x, 0)</c>; <c>∂x += ∂y · [y &gt; 0]</c>.</summary>
internal sealed class ReluOp : Op
{
    private Tensor _x = null!;

    public override string Name => "relu";

    public static Tensor Apply(Tensor x)
    {
        Tensor y = Tape.NewTensor(x.Shape);
        Relu.Forward(x.Data, y.Data);
        if (Tape.ShouldRecord(x))
        {
            var op = Tape.Record<ReluOp>(y);
            op._x = x;
        }
        return y;
    }

    public override void Backward()
    {
        if (!_x.RequiresGrad) return;
        // ReLU reaches every element of x: a gradient that is still zero is written, not cleared and then added to.
        float[] dx = _x.GradForOverwrite(out bool overwrite);
        Relu.Backward(Output.Data, Output.Grad, dx, overwrite);
    }
}
