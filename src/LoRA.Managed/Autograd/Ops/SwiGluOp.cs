using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// <c>y = silu(gate) ⊙ up</c>, a Llama MLP's gate (<c>act_fn(gate_proj(x)) * up_proj(x)</c>) as one op: the formulas
/// are on <see cref="SwiGluKernel"/>. Unlike <see cref="SiluOp"/> then <see cref="MulOp"/>, silu(gate) is not kept
/// for the backward (it is recomputed there), and a gradient not yet started is written rather than cleared and added.
/// </summary>
internal sealed class SwiGluOp : Op
{
    private Tensor _gate = null!, _up = null!;

    public override string Name => "swiglu";

    public static Tensor Apply(Tensor gate, Tensor up)
    {
        Shapes.RequireSame(gate, up, "swiglu");
        Tensor y = Tape.NewTensor(gate.Shape);
        SwiGluKernel.Forward(gate.Data, up.Data, y.Data);
        if (Tape.ShouldRecord(gate, up))
        {
            var op = Tape.Record<SwiGluOp>(y);
            op._gate = gate; op._up = up;
        }
        return y;
    }

    public override void Backward()
    {
        // up's gradient first: when gate and up are one tensor, the second request accumulates into the first.
        bool overwriteUp = false, overwriteGate = false;
        Span<float> du = _up.RequiresGrad ? _up.GradForOverwrite(out overwriteUp) : default;
        Span<float> dg = _gate.RequiresGrad ? _gate.GradForOverwrite(out overwriteGate) : default;
        SwiGluKernel.Backward(_gate.Data, _up.Data, Output.Grad, dg, overwriteGate, du, overwriteUp);
    }
}
