using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// <c>y = x·Wᵀ + b</c> (PyTorch's <c>F.linear</c>). x is (N, in) (leading dimensions are flattened
/// into N), W is (out, in), b is (out), y is (N, out). Backward:
/// <c>∂x += ∂y·W</c>, <c>∂W += ∂yᵀ·x</c>, <c>∂b += Σₙ ∂y</c>: the transposes are GEMM flags, never copies.
/// With <c>weightInOut</c> W is stored (in, out) as GPT-2's <c>Conv1D</c> keeps it (<c>y = x·W + b</c>, HF's
/// <c>torch.addmm(b, x, W)</c>); then <c>∂x += ∂y·Wᵀ</c> and <c>∂W += xᵀ·∂y</c>.
/// </summary>
internal sealed class LinearOp : Op
{
    private Tensor _x = null!, _w = null!;
    private Tensor? _b;
    private int _n, _in, _out;
    private bool _inOut;

    public override string Name => "linear";

    public static Tensor Apply(Tensor x, Tensor w, Tensor? b, bool weightInOut = false)
    {
        Shapes.RequireMatrix(w, "linear", "weight");
        int outF = weightInOut ? w.Shape[1] : w.Shape[0], inF = weightInOut ? w.Shape[0] : w.Shape[1];
        if (x.Shape[^1] != inF)
            throw new ArgumentException($"linear: input {Shapes.Format(x.Shape)} has {x.Shape[^1]} features but " +
                $"weight {Shapes.Format(w.Shape)} expects {inF}.");
        if (b is not null && (b.Rank != 1 || b.Count != outF))
            throw new ArgumentException($"linear: bias {Shapes.Format(b.Shape)} does not match weight " +
                $"{Shapes.Format(w.Shape)} (expected [{outF}]).");
        int n = inF == 0 ? 0 : x.Count / inF;
        Tensor y = Tape.NewTensorLike(x, outF);
        if (weightInOut) Gemm.Multiply(false, false, n, outF, inF, 1f, x.Data, inF, w.Data, outF, 0f, y.Data, outF);
        else Gemm.Multiply(false, true, n, outF, inF, 1f, x.Data, inF, w.Data, inF, 0f, y.Data, outF);
        if (b is not null) RowOps.AddBias(y.Data, b.Data, n, outF);
        if (Tape.ShouldRecord(x, w, b))
        {
            var op = Tape.Record<LinearOp>(y);
            op._x = x; op._w = w; op._b = b; op._n = n; op._in = inF; op._out = outF; op._inOut = weightInOut;
        }
        return y;
    }

    public override void Backward()
    {
        ReadOnlySpan<float> dy = Output.Grad;
        if (_inOut)
        {
            BackwardInOut(dy);
            return;
        }
        // β = 0 when the gradient is logically zero (just zeroed or new): the GEMM writes it instead of adding to
        // zeros it would first have to clear and read (Tensor.GradBeta).
        if (_x.RequiresGrad)
            Gemm.Multiply(false, false, _n, _in, _out, 1f, dy, _out, _w.Data, _in, _x.GradBeta(out float[] gx),
                gx, _in);
        if (_w.RequiresGrad)
            Gemm.Multiply(true, false, _out, _in, _n, 1f, dy, _out, _x.Data, _in, _w.GradBeta(out float[] gw), gw, _in);
        if (_b is not null && _b.RequiresGrad)
            RowOps.AccumulateColumnSums(dy, _n, _out, _b.EnsureGrad());
    }

    /// <summary>The Conv1D layout, W (in, out): <c>∂x += ∂y·Wᵀ</c>, <c>∂W += xᵀ·∂y</c>, <c>∂b += Σₙ ∂y</c>.</summary>
    private void BackwardInOut(ReadOnlySpan<float> dy)
    {
        if (_x.RequiresGrad)
            Gemm.Multiply(false, true, _n, _in, _out, 1f, dy, _out, _w.Data, _out, _x.GradBeta(out float[] gx),
                gx, _in);
        if (_w.RequiresGrad)
            Gemm.Multiply(true, false, _in, _out, _n, 1f, _x.Data, _in, dy, _out, _w.GradBeta(out float[] gw),
                gw, _out);
        if (_b is not null && _b.RequiresGrad)
            RowOps.AccumulateColumnSums(dy, _n, _out, _b.EnsureGrad());
    }
}
