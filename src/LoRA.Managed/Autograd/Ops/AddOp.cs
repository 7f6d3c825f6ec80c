using LoRA.Managed.Tensors;
using LoRA.Managed.Kernels;

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
        ParallelRange.Add(a.Data, b.Data, y.Data);
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
        // b first: a may then take dy's buffer itself (the residual stream's gradient moves on instead of being
        // copied), after which dy, the same memory, is a's gradient and must not change.
        if (_b.RequiresGrad) Accumulate(_b, dy);
        if (_a.RequiresGrad) PassOrAccumulate(Output, _a);
    }

    /// <summary><c>x.grad += from.grad</c> for an op whose backward passes its output's gradient on unchanged (add,
    /// reshape): when x has no gradient yet, the buffer itself moves to x instead of being copied
    /// (<see cref="Tensor.TryPassGradTo"/>).</summary>
    internal static void PassOrAccumulate(Tensor from, Tensor x)
    {
        if (!from.TryPassGradTo(x)) Accumulate(x, from.Grad);
    }

    /// <summary><c>x.grad += dy</c>, or a copy when the gradient is still zero (the residual stream's gradients are
    /// the size of the activations: no clearing and re-reading them).</summary>
    internal static void Accumulate(Tensor x, ReadOnlySpan<float> dy)
    {
        float[] g = x.GradForOverwrite(out bool overwrite);
        if (overwrite) ParallelRange.Copy(dy, g);
        else ParallelRange.Add(g, dy, g);
    }
}
