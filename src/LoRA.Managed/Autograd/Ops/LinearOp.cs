using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// <c>y = x·Wᵀ + b</c> (PyTorch's <c>F.linear</c>). x is (N, in) (leading dimensions are flattened
/// into N), W is (out, in), b is (out), y is (N, out). Backward:
/// <c>∂x += ∂y·W</c>, <c>∂W += ∂yᵀ·x</c>, <c>∂b += Σₙ ∂y</c>: the transposes are GEMM flags, never copies.
/// With <c>weightInOut</c> W is stored (in, out) as GPT-2's <c>Conv1D</c> keeps it (<c>y = x·W + b</c>, HF's
/// <c>torch.addmm(b, x, W)</c>); then <c>∂x += ∂y·Wᵀ</c> and <c>∂W += xᵀ·∂y</c>.
/// With <c>relu</c> the op is <c>y = max(x·Wᵀ + b, 0)</c> (a <c>Linear</c> followed by a <c>ReLU</c> in a
/// <c>Sequential</c>): the bias and the ReLU are applied by each thread of the product to the block it computed
/// (<see cref="GemmEpilogue"/>), and backward first masks ∂y where y = 0 (<see cref="Relu.BackwardWithBiasGrad"/>).
/// The bits are those of the linear op followed by the ReLU op (a NaN's payload aside: which of two NaN operands an
/// add returns depends on how the JIT orders them, in either path).
/// </summary>
internal sealed unsafe class LinearOp : Op
{
    private Tensor _x = null!, _w = null!;
    private Tensor? _b;
    private int _n, _in, _out;
    private bool _inOut, _relu;

    public override string Name => _relu ? "linear_relu" : "linear";

    /// <summary>When set, the bias is added after the product on the calling thread and the ReLU runs as its own op,
    /// as before the epilogue: only for the benchmark that times the two side by side (<c>--fusion</c>).</summary>
    internal static bool EpilogueDisabled;

    public static Tensor Apply(Tensor x, Tensor w, Tensor? b, bool weightInOut = false, bool relu = false)
    {
        Shapes.RequireMatrix(w, "linear", "weight");
        int outF = weightInOut ? w.Shape[1] : w.Shape[0], inF = weightInOut ? w.Shape[0] : w.Shape[1];
        if (x.Shape[^1] != inF)
            throw new ArgumentException($"linear: input {Shapes.Format(x.Shape)} has {x.Shape[^1]} features but " +
                $"weight {Shapes.Format(w.Shape)} expects {inF}.");
        if (b is not null && (b.Rank != 1 || b.Count != outF))
            throw new ArgumentException($"linear: bias {Shapes.Format(b.Shape)} does not match weight " +
                $"{Shapes.Format(w.Shape)} (expected [{outF}]).");
        if (relu && EpilogueDisabled) return ReluOp.Apply(Apply(x, w, b, weightInOut));
        int n = 1;   // rows: the leading dimensions (x.Count / inF fails for inF = 0, where y is the bias repeated)
        for (int i = 0; i < x.Rank - 1; i++) n *= x.Shape[i];
        Tensor y = Tape.NewTensorLike(x, outF);
        fixed (float* bias = b is null || EpilogueDisabled ? default : b.Data)
        {
            var epilogue = new GemmEpilogue(bias, relu);
            if (weightInOut)
                Gemm.MultiplyWithEpilogue(false, false, n, outF, inF, 1f, x.Data, inF, w.Data, outF, 0f, y.Data, outF,
                    epilogue);
            else
                Gemm.MultiplyWithEpilogue(false, true, n, outF, inF, 1f, x.Data, inF, w.Data, inF, 0f, y.Data, outF,
                    epilogue);
        }
        if (b is not null && EpilogueDisabled) RowOps.AddBias(y.Data, b.Data, n, outF);
        if (Tape.ShouldRecord(x, w, b))
        {
            var op = Tape.Record<LinearOp>(y);
            op._x = x; op._w = w; op._b = b; op._n = n; op._in = inF; op._out = outF; op._inOut = weightInOut;
            op._relu = relu;
        }
        return y;
    }

    public override void Backward()
    {
        if (!_relu)
        {
            Backward(Output.Grad, withBias: true);
            return;
        }
        // dz = ∂y masked where y = 0, with the bias gradient summed in the same pass; then the plain backward on dz.
        // The mask is written over ∂y: every reader of this output ran before this op, and the tape releases its
        // gradient right after (Tape.Run), so no one sees ∂y again.
        Span<float> dy = Output.Grad;
        bool bias = _b is not null && _b.RequiresGrad;
        Relu.BackwardWithBiasGrad(Output.Data, dy, dy, _n, _out, bias ? _b!.EnsureGrad() : default);
        Backward(dy, withBias: false);
    }

    private void Backward(ReadOnlySpan<float> dy, bool withBias)
    {
        if (_inOut)
        {
            BackwardInOut(dy, withBias);
            return;
        }
        // β = 0 when the gradient is logically zero (just zeroed or new): the GEMM writes it instead of adding to
        // zeros it would first have to clear and read (Tensor.GradBeta).
        if (_x.RequiresGrad)
            Gemm.Multiply(false, false, _n, _in, _out, 1f, dy, _out, _w.Data, _in, _x.GradBeta(out float[] gx),
                gx, _in);
        if (_w.RequiresGrad)
            Gemm.Multiply(true, false, _out, _in, _n, 1f, dy, _out, _x.Data, _in, _w.GradBeta(out float[] gw), gw, _in);
        if (withBias && _b is not null && _b.RequiresGrad)
            RowOps.AccumulateColumnSums(dy, _n, _out, _b.EnsureGrad());
    }

    /// <summary>The Conv1D layout, W (in, out): <c>∂x += ∂y·Wᵀ</c>, <c>∂W += xᵀ·∂y</c>, <c>∂b += Σₙ ∂y</c>.</summary>
    private void BackwardInOut(ReadOnlySpan<float> dy, bool withBias)
    {
        if (_x.RequiresGrad)
            Gemm.Multiply(false, true, _n, _in, _out, 1f, dy, _out, _w.Data, _out, _x.GradBeta(out float[] gx),
                gx, _in);
        if (_w.RequiresGrad)
            Gemm.Multiply(true, false, _in, _out, _n, 1f, _x.Data, _in, dy, _out, _w.GradBeta(out float[] gw),
                gw, _out);
        if (withBias && _b is not null && _b.RequiresGrad)
            RowOps.AccumulateColumnSums(dy, _n, _out, _b.EnsureGrad());
    }
}
