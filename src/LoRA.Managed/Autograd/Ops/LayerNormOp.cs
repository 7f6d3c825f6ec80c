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
    private Tensor _x = null!, _w = null!, _b = null!, _mean = null!, _rstd = null!;
    private int _rows, _cols;
    // The backward's two rows of scratch (x̂ and g), kept on the reused record.
    private float[] _scratch = [];

    public override string Name => "layer_norm";

    public static Tensor Apply(Tensor x, Tensor weight, Tensor bias, float eps)
    {
        int cols = x.Shape[^1];
        if (weight.Rank != 1 || weight.Count != cols || bias.Rank != 1 || bias.Count != cols)
            throw new ArgumentException($"layer_norm: weight {Shapes.Format(weight.Shape)} and bias " +
                $"{Shapes.Format(bias.Shape)} must both be [{cols}] for input {Shapes.Format(x.Shape)}.");
        if (!(eps > 0f)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "layer_norm: eps must be positive.");
        int rows = cols == 0 ? 0 : x.Count / cols;
        Tensor y = Tape.NewTensor(x.Shape);
        // The kernel writes every row of y, mean and rstd, so stale arena contents are never read.
        Tensor mean = Tape.NewTensor([rows]), rstd = Tape.NewTensor([rows]);
        LayerNormKernel.Forward(x.Data, weight.Data, bias.Data, y.Data, mean.Data, rstd.Data, rows, cols, eps);
        if (Tape.ShouldRecord(x, weight, bias))
        {
            var op = Tape.Record<LayerNormOp>(y);
            op._x = x; op._w = weight; op._b = bias; op._mean = mean; op._rstd = rstd; op._rows = rows; op._cols = cols;
        }
        return y;
    }

    public override void Backward()
    {
        if (_scratch.Length != 2 * _cols) _scratch = new float[2 * _cols];
        // x's gradient is written, not added, when still zero (ln_f's input: nothing else reads it).
        bool overwrite = false;
        Span<float> dx = _x.RequiresGrad ? _x.GradForOverwrite(out overwrite) : Span<float>.Empty;
        LayerNormKernel.Backward(_x.Data, _w.Data, _mean.Data, _rstd.Data, Output.Grad,
            dx, GradOf(_w), GradOf(_b), _rows, _cols, _scratch, overwrite);
    }
}
