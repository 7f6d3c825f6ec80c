using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// Mean cross-entropy of logits (N, C) over the rows whose label is not <see cref="IgnoreIndex"/>
/// (<c>F.cross_entropy(logits, labels, ignore_index=-100)</c>, how SFT trainers put the loss on completion tokens
/// only): <c>L = −(1/K) Σ_{i kept} log softmax(zᵢ)[yᵢ]</c>, <c>∂L/∂zᵢ = (softmax(zᵢ) − onehot(yᵢ))/K</c> for kept rows and 0
/// for ignored ones. The forward writes the gradient as it goes; backward scales it by the upstream gradient.
/// </summary>
internal sealed class MaskedCrossEntropyOp : Op
{
    /// <summary>The label that marks a row out of the loss (PyTorch's default <c>ignore_index</c>).</summary>
    public const int IgnoreIndex = -100;

    private Tensor _logits = null!, _dLogits = null!;

    public override string Name => "masked_cross_entropy";

    public static Tensor Apply(Tensor logits, ReadOnlySpan<int> labels)
    {
        Shapes.RequireMatrix(logits, "masked_cross_entropy", "logits");
        int rows = logits.Shape[0], classes = logits.Shape[1];
        if (rows != labels.Length)
            throw new ArgumentException($"masked_cross_entropy: logits {Shapes.Format(logits.Shape)} but {labels.Length} labels.");
        int kept = 0;
        for (int i = 0; i < rows; i++)
        {
            if (labels[i] == IgnoreIndex) continue;
            if ((uint)labels[i] >= (uint)classes)
                throw new ArgumentException($"masked_cross_entropy: label {labels[i]} at row {i} is outside 0..{classes - 1} (and is not {IgnoreIndex}).");
            kept++;
        }
        if (kept == 0) throw new ArgumentException("masked_cross_entropy: every label is ignored; the mean is undefined.");
        bool record = Tape.ShouldRecord(logits);
        Tensor d = Tape.NewTensor(logits.Shape);
        LogSoftmax.Rows(logits.Data, d.Data, rows, classes);
        double total = 0;
        float inv = 1f / kept;
        Span<float> dd = d.Data;
        for (int i = 0; i < rows; i++)
        {
            Span<float> row = dd.Slice(i * classes, classes);
            if (labels[i] == IgnoreIndex) { row.Clear(); continue; }
            total -= row[labels[i]];
            TensorPrimitives.Exp(row, row);
            TensorPrimitives.Multiply(row, inv, row);
            row[labels[i]] -= inv;
        }
        Tensor y = Tape.NewTensor([1]);
        y[0] = (float)(total / kept);
        if (record)
        {
            var op = Tape.Record<MaskedCrossEntropyOp>(y);
            op._logits = logits; op._dLogits = d;
        }
        return y;
    }

    public override void Backward()
    {
        if (!_logits.RequiresGrad) return;
        Span<float> g = _logits.EnsureGrad();
        TensorPrimitives.MultiplyAdd(_dLogits.Data, Output.Grad[0], g, g);
    }
}
