using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// Rotary position embedding of x (B, T, H, D), token t at position <c>start + t</c>, from cos/sin tables
/// (positions, D/2); the rotation and its transpose (the backward) are on <see cref="RopeKernel"/>.
/// </summary>
internal sealed class RopeOp : Op
{
    private Tensor _x = null!;
    private float[] _cos = [], _sin = [];
    private int _start;

    public override string Name => "rope";

    public static Tensor Apply(Tensor x, float[] cos, float[] sin, int start)
    {
        ArgumentNullException.ThrowIfNull(cos);
        ArgumentNullException.ThrowIfNull(sin);
        if (x.Rank != 4) throw new ArgumentException($"rope: expected (B, T, H, D), got {Shapes.Format(x.Shape)}.");
        Tensor y = Tape.NewTensor(x.Shape);
        RopeKernel.Forward(x.Data, y.Data, x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3], start, cos, sin);
        if (Tape.ShouldRecord(x))
        {
            var op = Tape.Record<RopeOp>(y);
            op._x = x; op._cos = cos; op._sin = sin; op._start = start;
        }
        return y;
    }

    public override void Backward()
    {
        if (!_x.RequiresGrad) return;
        int[] s = _x.Shape;
        RopeKernel.Backward(Output.Grad, _x.EnsureGrad(), s[0], s[1], s[2], s[3], _start, _cos, _sin);
    }
}
