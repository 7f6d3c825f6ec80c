using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// <c>y = x·Wᵀ + b</c> with a frozen W stored quantised (<see cref="QuantizedMatrix"/>, <c>[out, in]</c>): the
/// QLoRA base layer. The forward expands W into the GEMM's packed panels inside <see cref="QuantizedGemm"/>; backward
/// gives <c>∂x += ∂y·W</c> the same way and <c>∂b += Σₙ ∂y</c>, and no weight gradient (the
/// base is frozen, as bitsandbytes' <c>Linear4bit</c> under PEFT).
/// </summary>
internal sealed class QuantizedLinearOp : Op
{
    private Tensor _x = null!;
    private QuantizedMatrix _w = null!;
    private Tensor? _b;
    private int _n;

    public override string Name => "quantized_linear";

    public static Tensor Apply(Tensor x, QuantizedMatrix w, Tensor? b)
    {
        ArgumentNullException.ThrowIfNull(w);
        int outF = w.Rows, inF = w.Columns;
        if (x.Shape[^1] != inF)
            throw new ArgumentException($"quantized_linear: input {Shapes.Format(x.Shape)} has {x.Shape[^1]} "
                + $"features but the {w.DType} weight [{outF}, {inF}] expects {inF}.");
        if (b is not null && (b.Rank != 1 || b.Count != outF))
            throw new ArgumentException($"quantized_linear: bias {Shapes.Format(b.Shape)} does not match the "
                + $"weight [{outF}, {inF}] (expected [{outF}]).");
        int n = inF == 0 ? 0 : x.Count / inF;
        Tensor y = Tape.NewTensorLike(x, outF);
        QuantizedGemm.MultiplyTransposed(w, n, x.Data, y.Data);
        if (b is not null) RowOps.AddBias(y.Data, b.Data, n, outF);
        if (Tape.ShouldRecord(x, b))
        {
            var op = Tape.Record<QuantizedLinearOp>(y);
            op._x = x; op._w = w; op._b = b; op._n = n;
        }
        return y;
    }

    public override void Backward()
    {
        ReadOnlySpan<float> dy = Output.Grad;
        if (_x.RequiresGrad)
        {
            float beta = _x.GradBeta(out float[] gx);   // 0 while x's gradient is still zero: written, not added to
            QuantizedGemm.MultiplyAccumulate(_w, _n, dy, gx, beta);
        }
        if (_b is not null && _b.RequiresGrad)
            RowOps.AccumulateColumnSums(dy, _n, _w.Rows, _b.EnsureGrad());
    }
}
