using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Kernels;

/// <summary>
/// Fused log-softmax + negative log-likelihood over a batch, and its gradient in the same pass, as
/// <c>F.cross_entropy(z, y, ignore_index=-100)</c>: over the K rows whose label is not <see cref="IgnoreIndex"/>,
/// <c>L = −(1/K) Σᵢ log softmax(zᵢ)[yᵢ]</c>, <c>∂L/∂zᵢ = (softmax(zᵢ) − onehot(yᵢ)) / K</c>, and 0 for ignored rows (how
/// SFT trainers put the loss on completion tokens only). With no label ignored, K is the batch size B.
/// </summary>
public static class CrossEntropyKernel
{
    /// <summary>The label that leaves a row out of the loss (PyTorch's default <c>ignore_index</c>).</summary>
    public const int IgnoreIndex = -100;

    /// <summary>
    /// Computes the mean loss over the kept rows of the logits and, when <paramref name="gradScale"/> is not
    /// zero, writes <c>gradScale · ∂L/∂z</c> into <paramref name="dLogits"/> (overwriting it).
    /// </summary>
    /// <param name="logits">B×C logits, row-major.</param>
    /// <param name="labels">B class indices in 0..C−1, or <see cref="IgnoreIndex"/>.</param>
    /// <param name="classes">C.</param>
    /// <param name="dLogits">B×C gradient destination (used as scratch for the log-probabilities).</param>
    /// <param name="gradScale">Upstream gradient of the loss (1 for a plain backward); 0 skips the gradient.</param>
    /// <exception cref="ArgumentException">Shapes differ, a label is out of range, or every label is ignored.</exception>
    public static float ForwardBackward(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes, Span<float> dLogits, float gradScale)
    {
        int rows = labels.Length;
        if (classes <= 0 || logits.Length != rows * classes || dLogits.Length != logits.Length)
            throw new ArgumentException($"CrossEntropy: logits have {logits.Length} elements, gradient {dLogits.Length}, expected {rows}×{classes}.");
        if (rows == 0) throw new ArgumentException("CrossEntropy: the batch is empty.");
        int kept = rows;
        for (int i = 0; i < rows; i++)
        {
            if (labels[i] == IgnoreIndex) kept--;
            else if ((uint)labels[i] >= (uint)classes)
                throw new ArgumentException($"CrossEntropy: label {labels[i]} at row {i} is outside 0..{classes - 1} (and is not {IgnoreIndex}).");
        }
        if (kept == 0) throw new ArgumentException($"CrossEntropy: every label is {IgnoreIndex} (ignored); the mean is undefined.");
        LogSoftmax.Rows(logits, dLogits, rows, classes);
        double total = 0;
        float invK = gradScale / kept;
        for (int i = 0; i < rows; i++)
        {
            int label = labels[i];
            Span<float> row = dLogits.Slice(i * classes, classes);
            if (label == IgnoreIndex)
            {
                row.Clear();
                continue;
            }
            total -= row[label];
            if (gradScale != 0f)
            {
                TensorPrimitives.Exp(row, row);                 // softmax
                TensorPrimitives.Multiply(row, invK, row);
                row[label] -= invK;
            }
        }
        return (float)(total / kept);
    }
}
