using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// Scaled, causally masked row softmax over attention scores (…, T, T): row i attends to keys 0..i only
/// (see <see cref="CausalSoftmaxKernel"/>). Equivalent to
/// <c>F.softmax((s·x).masked_fill(triu(ones(T,T), 1), -inf), dim=-1)</c>. Backward uses the saved output only, so the
/// scores may be overwritten by the probabilities (<c>inPlace</c>): attention never reads its scores again, and a
/// step then holds one T×T matrix per head instead of two.
/// </summary>
internal sealed class CausalSoftmaxOp : Op
{
    private Tensor _x = null!;
    private int _matrices, _t;
    private float _scale;

    public override string Name => "causal_softmax";

    public static Tensor Apply(Tensor x, float scale, bool inPlace = false)
    {
        if (x.Rank < 2 || x.Shape[^1] != x.Shape[^2])
            throw new ArgumentException("causal_softmax: scores must end in a square (T, T), got shape " +
                $"{Shapes.Format(x.Shape)}.");
        if (!float.IsFinite(scale))
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "causal_softmax: the scale must be finite.");
        int t = x.Shape[^1];
        int matrices = t == 0 ? 0 : x.Count / (t * t);
        // The kernel writes every element, the masked ones as 0, and allows y to alias x.
        Tensor y = inPlace ? Tape.NewView(x, x.Shape) : Tape.NewTensor(x.Shape);
        CausalSoftmaxKernel.Forward(x.Data, y.Data, matrices, t, scale);
        if (Tape.ShouldRecord(x))
        {
            var op = Tape.Record<CausalSoftmaxOp>(y);
            op._x = x; op._matrices = matrices; op._t = t; op._scale = scale;
        }
        return y;
    }

    public override void Backward()
    {
        if (!_x.RequiresGrad) return;
        float[] dx = _x.GradForOverwrite(out bool overwrite); // written, not added, when still zero
        CausalSoftmaxKernel.Backward(Output.Data, Output.Grad, dx, _matrices, _t, _scale, overwrite);
    }
}
