using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// GELU, tanh approximation (<c>F.gelu(x, approximate='tanh')</c>, GPT-2's <c>gelu</c>); the formula and
/// its derivative are on <see cref="GeluKernel"/>. Backward recomputes the derivative from x.
/// </summary>
internal sealed class GeluOp : Op
{
    private readonly Tensor _x;

    private GeluOp(Tensor y, Tensor x) : base(y) => _x = x;

    public override string Name => "gelu";

    public static Tensor Apply(Tensor x)
    {
        var y = new Tensor(x.Shape);
        GeluKernel.Forward(x.Data, y.Data);
        if (Tape.ShouldRecord(x)) Tape.Current.Record(new GeluOp(y, x));
        return y;
    }

    public override void Backward()
    {
        if (_x.RequiresGrad) GeluKernel.Backward(_x.Data, Output.Grad, _x.EnsureGrad());
    }
}
