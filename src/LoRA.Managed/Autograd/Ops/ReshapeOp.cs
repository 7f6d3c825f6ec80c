using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>A new shape over the same elements in the same order; the gradient flows back unchanged.</summary>
internal sealed class ReshapeOp : Op
{
    private readonly Tensor _x;

    private ReshapeOp(Tensor y, Tensor x) : base(y) => _x = x;

    public override string Name => "reshape";

    public static Tensor Apply(Tensor x, int[] shape)
    {
        int count = Shapes.CheckedCount(shape, "reshape");
        if (count != x.Count)
            throw new ArgumentException($"reshape: cannot view {Shapes.Format(x.Shape)} ({x.Count} elements) as {Shapes.Format(shape)} ({count}).");
        var y = new Tensor((float[])x.Array.Clone(), shape);
        if (Tape.ShouldRecord(x)) Tape.Current.Record(new ReshapeOp(y, x));
        return y;
    }

    public override void Backward()
    {
        if (!_x.RequiresGrad) return;
        Span<float> g = _x.EnsureGrad();
        TensorPrimitives.Add(g, Output.Grad, g);
    }
}
