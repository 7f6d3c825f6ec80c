using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Kernels;

/// <summary>
/// Fused log-softmax + negative log-likelihood over a batch, and its gradient in the same pass:
/// <c>L = −(1/B) Σᵢ log softmax(zᵢ)[yᵢ]</c>, <c>∂L/∂zᵢ = (softmax(zᵢ) − onehot(yᵢ)) / B</c>.
/// </summary>
public static class CrossEntropyKernel
{
    /// <summary>
    /// Computes the mean loss over rows of the logits and, when <paramref name="gradScale"/> is not
    /// zero, writes <c>gradScale · ∂L/∂z</c> into <paramref name="dLogits"/> (overwriting it).
    /// </summary>
    /// <param name="logits">B×C logits, row-major.</param>
    /// <param name="labels">B class indices in 0..C−1.</param>
    /// <param name="classes">C.</param>
    /// <param name="dLogits">B×C gradient destination (used as scratch for the log-probabilities).</param>
    /// <param name="gradScale">Upstream gradient of the loss (1 for a plain backward); 0 skips the gradient.</param>
    public static float ForwardBackward(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes, Span<float> dLogits, float gradScale)
    {
        int rows = labels.Length;
        if (classes <= 0 || logits.Length != rows * classes || dLogits.Length != logits.Length)
            throw new ArgumentException($"CrossEntropy: logits have {logits.Length} elements, gradient {dLogits.Length}, expected {rows}×{classes}.");
        if (rows == 0) throw new ArgumentException("CrossEntropy: the batch is empty.");
        LogSoftmax.Rows(logits, dLogits, rows, classes);
        double total = 0;
        float invB = gradScale / rows;
        for (int i = 0; i < rows; i++)
        {
            int label = labels[i];
            if ((uint)label >= (uint)classes)
                throw new ArgumentException($"CrossEntropy: label {label} at row {i} is outside 0..{classes - 1}.");
            Span<float> row = dLogits.Slice(i * classes, classes);
            total -= row[label];
            if (gradScale != 0f)
            {
                TensorPrimitives.Exp(row, row);                 // softmax
                TensorPrimitives.Multiply(row, invB, row);
                row[label] -= invB;
            }
        }
        return (float)(total / rows);
    }
}
