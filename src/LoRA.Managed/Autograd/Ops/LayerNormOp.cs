using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// Layer normalisation over the last dimension with an elementwise affine weight and bias
/// (<c>F.layer_norm(x, (C,), w, b, eps)</c>); the formulas are on <see cref="LayerNormKernel"/>.
/// The forward's per-row mean and 1/σ are kept for the backward.
/// </summary>
internal sealed class LayerNormOp : Op
{
    private readonly Tensor _x, _w, _b;
    private readonly float[] _mean, _rstd;
    private readonly int _rows, _cols;

    private LayerNormOp(Tensor y, Tensor x, Tensor w, Tensor b, float[] mean, float[] rstd, int rows, int cols) : base(y)
    {
        _x = x; _w = w; _b = b; _mean = mean; _rstd = rstd; _rows = rows; _cols = cols;
    }

    public override string Name => "layer_norm";

    public static Tensor Apply(Tensor x, Tensor weight, Tensor bias, float eps)
    {
        int cols = x.Shape[^1];
        if (weight.Rank != 1 || weight.Count != cols || bias.Rank != 1 || bias.Count != cols)
            throw new ArgumentException($"layer_norm: weight {Shapes.Format(weight.Shape)} and bias {Shapes.Format(bias.Shape)} must both be [{cols}] for input {Shapes.Format(x.Shape)}.");
        if (!(eps > 0f)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "layer_norm: eps must be positive.");
        int rows = cols == 0 ? 0 : x.Count / cols;
        var y = new Tensor(x.Shape);
        var mean = new float[rows];
        var rstd = new float[rows];
        LayerNormKernel.Forward(x.Data, weight.Data, bias.Data, y.Data, mean, rstd, rows, cols, eps);
        if (Tape.ShouldRecord(x, weight, bias)) Tape.Current.Record(new LayerNormOp(y, x, weight, bias, mean, rstd, rows, cols));
        return y;
    }

    public override void Backward()
    {
        var scratch = new float[2 * _cols];
        LayerNormKernel.Backward(_x.Data, _w.Data, _mean, _rstd, Output.Grad,
            GradOf(_x), GradOf(_w), GradOf(_b), _rows, _cols, scratch);
    }
}
