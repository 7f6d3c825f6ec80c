using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// GELU, tanh approximation (<c>F.gelu(x, approximate='tanh')</c>, GPT-2's <c>gelu</c>); the formula and
/// its derivative are on <see cref="GeluKernel"/>. Backward recomputes the derivative from x.
/// </summary>
internal sealed class GeluOp : Op
{
    private Tensor _x = null!;

    public override string Name => "gelu";

    public static Tensor Apply(Tensor x)
    {
        Tensor y = Tape.NewTensor(x.Shape);
        GeluKernel.Forward(x.Data, y.Data);
        if (Tape.ShouldRecord(x))
        {
            var op = Tape.Record<GeluOp>(y);
            op._x = x;
        }
        return y;
    }

    public override void Backward()
    {
        if (!_x.RequiresGrad) return;
        float[] dx = _x.GradForOverwrite(out bool overwrite); // written, not added, when still zero
        GeluKernel.Backward(_x.Data, Output.Grad, dx, overwrite);
    }
}
