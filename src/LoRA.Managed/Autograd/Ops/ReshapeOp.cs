using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// A new shape over the same elements in the same order, as a view sharing the input's storage (PyTorch's
/// <c>view</c>): no copy, no second buffer. The gradient flows back unchanged: its buffer is handed to x when x has
/// none yet (no copy either), else added to x's.
/// </summary>
internal sealed class ReshapeOp : Op
{
    private Tensor _x = null!;

    public override string Name => "reshape";

    public static Tensor Apply(Tensor x, int[] shape)
    {
        int count = Shapes.CheckedCount(shape, "reshape");
        if (count != x.Count)
            throw new ArgumentException($"reshape: cannot view {Shapes.Format(x.Shape)} ({x.Count} elements) as " +
                $"{Shapes.Format(shape)} ({count}).");
        Tensor y = Tape.NewView(x, shape);
        if (Tape.ShouldRecord(x))
        {
            var op = Tape.Record<ReshapeOp>(y);
            op._x = x;
        }
        return y;
    }

    public override void Backward()
    {
        // The gradient is the output's, unchanged: when x has none yet, its buffer simply moves to x.
        if (_x.RequiresGrad) AddOp.PassOrAccumulate(Output, _x);
    }
}
