using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>SiLU, <c>x·σ(x)</c> (<c>F.silu</c>); the formula and derivative are on <see cref="SiluKernel"/>.</summary>
internal sealed class SiluOp : Op
{
    private Tensor _x = null!;

    public override string Name => "silu";

    public static Tensor Apply(Tensor x)
    {
        Tensor y = Tape.NewTensor(x.Shape);
        SiluKernel.Forward(x.Data, y.Data);
        if (Tape.ShouldRecord(x))
        {
            var op = Tape.Record<SiluOp>(y);
            op._x = x;
        }
        return y;
    }

    public override void Backward()
    {
        if (_x.RequiresGrad) SiluKernel.Backward(_x.Data, Output.Grad, _x.EnsureGrad());
    }
}
