using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// RMS normalisation over the last dimension with an elementwise weight (Hugging Face's <c>LlamaRMSNorm</c>);
/// the formulas are on <see cref="RmsNormKernel"/>. The forward's per-row 1/RMS is kept for the backward.
/// </summary>
internal sealed class RmsNormOp : Op
{
    private Tensor _x = null!, _w = null!, _rstd = null!;
    private int _rows, _cols;
    private float[] _scratch = [];

    public override string Name => "rms_norm";

    public static Tensor Apply(Tensor x, Tensor weight, float eps)
    {
        int cols = x.Shape[^1];
        if (weight.Rank != 1 || weight.Count != cols)
            throw new ArgumentException($"rms_norm: weight {Shapes.Format(weight.Shape)} must be [{cols}] for input " +
                $"{Shapes.Format(x.Shape)}.");
        if (!(eps > 0f)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "rms_norm: eps must be positive.");
        int rows = cols == 0 ? 0 : x.Count / cols;
        Tensor y = Tape.NewTensor(x.Shape), rstd = Tape.NewTensor([rows]);
        RmsNormKernel.Forward(x.Data, weight.Data, y.Data, rstd.Data, rows, cols, eps);
        if (Tape.ShouldRecord(x, weight))
        {
            var op = Tape.Record<RmsNormOp>(y);
            op._x = x; op._w = weight; op._rstd = rstd; op._rows = rows; op._cols = cols;
        }
        return y;
    }

    public override void Backward()
    {
        if (_scratch.Length != 2 * _cols) _scratch = new float[2 * _cols];
        RmsNormKernel.Backward(_x.Data, _w.Data, _rstd.Data, Output.Grad, GradOf(_x), GradOf(_w), _rows, _cols,
            _scratch);
    }
}
