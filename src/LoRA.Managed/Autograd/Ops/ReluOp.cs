using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary><c>y = max(x, 0)</c>; <c>∂x += ∂y · [y &gt; 0]</c>.</summary>
internal sealed class ReluOp : Op
{
    private readonly Tensor _x;

    private ReluOp(Tensor y, Tensor x) : base(y) => _x = x;

    public override string Name => "relu";

    public static Tensor Apply(Tensor x)
    {
        var y = new Tensor(x.Shape);
        Relu.Forward(x.Data, y.Data);
        if (Tape.ShouldRecord(x)) Tape.Current.Record(new ReluOp(y, x));
        return y;
    }

    public override void Backward()
    {
        if (_x.RequiresGrad) Relu.Backward(Output.Data, Output.Grad, _x.EnsureGrad());
    }
}
