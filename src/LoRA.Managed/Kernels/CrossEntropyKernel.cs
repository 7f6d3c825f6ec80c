using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Kernels;

/// <summary>
/// Fused log-softmax + negative log-likelihood over a batch, and its gradient in the same pass, as
/// <c>F.cross_entropy(z, y, ignore_index=-100)</c>: over the K rows whose label is not <see cref="IgnoreIndex"/>,
/// <c>L = −(1/K) Σᵢ log softmax(zᵢ)[yᵢ]</c>, <c>∂L/∂zᵢ = (softmax(zᵢ) − onehot(yᵢ)) / K</c>, and 0 for ignored rows
/// (how SFT trainers put the loss on completion tokens only). With no label ignored, K is the batch size B.
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
    /// <exception cref="ArgumentException">Shapes differ, a label is out of range, or every label is
    /// ignored.</exception>
    public static float ForwardBackward(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes,
        Span<float> dLogits, float gradScale)
    {
        int rows = labels.Length;
        if (classes <= 0 || logits.Length != rows * classes || dLogits.Length != logits.Length)
            throw new ArgumentException($"CrossEntropy: logits have {logits.Length} elements, gradient " +
                $"{dLogits.Length}, expected {rows}×{classes}.");
        int kept = CountKept(labels, classes);
        return (float)(NllSum(logits, labels, classes, dLogits, gradScale / kept) / kept);
    }

    /// <summary>
    /// The number of rows whose label is not <see cref="IgnoreIndex"/>: the mean's divisor K. Checks every label.
    /// </summary>
    /// <exception cref="ArgumentException">The batch is empty, a label is out of range, or every label is
    /// ignored.</exception>
    public static int CountKept(ReadOnlySpan<int> labels, int classes)
    {
        int rows = labels.Length;
        if (rows == 0) throw new ArgumentException("CrossEntropy: the batch is empty.");
        int kept = rows;
        for (int i = 0; i < rows; i++)
        {
            if (labels[i] == IgnoreIndex) kept--;
            else if ((uint)labels[i] >= (uint)classes)
                throw new ArgumentException($"CrossEntropy: label {labels[i]} at row {i} is outside 0..{classes - 1} " +
                    $"(and is not {IgnoreIndex}).");
        }
        if (kept == 0)
            throw new ArgumentException($"CrossEntropy: every label is {IgnoreIndex} (ignored); " +
                "the mean is undefined.");
        return kept;
    }

    /// <summary>
    /// The sum over kept rows of <c>−log softmax(zᵢ)[yᵢ]</c>, in double, and, when <paramref name="gradPerRow"/> is not
    /// zero, <c>gradPerRow · (softmax(zᵢ) − onehot(yᵢ))</c> into <paramref name="dLogits"/> (0 for ignored rows): the
    /// building block for a mean over rows processed in chunks (<paramref name="gradPerRow"/> = upstream / K).
    /// Labels must have been checked (<see cref="CountKept"/>).
    /// </summary>
    /// <exception cref="ArgumentException">The spans do not hold labels.Length × classes elements.</exception>
    public static double NllSum(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes, Span<float> dLogits,
        float gradPerRow)
    {
        int rows = labels.Length;
        if (classes <= 0 || logits.Length != rows * classes || dLogits.Length != logits.Length)
            throw new ArgumentException($"CrossEntropy: logits have {logits.Length} elements, gradient " +
                $"{dLogits.Length}, expected {rows}×{classes}.");
        return rows == 0 ? 0 : Sum(logits, labels, classes, dLogits, gradPerRow);
    }

    /// <summary>
    /// <see cref="NllSum"/> with the gradient written over the logits: the caller holds one rows × classes buffer
    /// instead of two (a language model's head, 50,257 classes a row). Each row's log-probabilities go through a
    /// scratch row of the thread, and the row's gradient is stored back over its logits; the operations, and so the
    /// bits, are <see cref="NllSum"/>'s (ignored rows get 0). When <paramref name="gradPerRow"/> is zero only the loss
    /// is wanted and the span's contents are unspecified afterwards.
    /// </summary>
    /// <exception cref="ArgumentException">The span does not hold labels.Length × classes elements.</exception>
    public static double NllSumInPlace(Span<float> logits, ReadOnlySpan<int> labels, int classes, float gradPerRow)
    {
        int rows = labels.Length;
        if (classes <= 0 || logits.Length != rows * classes)
            throw new ArgumentException($"CrossEntropy: logits have {logits.Length} elements, expected " +
                $"{rows}×{classes}.");
        return rows == 0 ? 0 : Sum(logits, labels, classes, logits, gradPerRow);
    }

    private static unsafe double Sum(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes,
        Span<float> dLogits, float gradPerRow)
    {
        int rows = labels.Length;
        // Rows are independent: they split over threads, each writing its row's −log p into a scratch slot, and the
        // loss is then summed in row order on this thread, so its bits do not depend on the thread count.
        float[] losses = t_losses is { } l && l.Length >= rows ? l : t_losses = new float[rows];
        fixed (float* pz = logits, pd = dLogits, pl = losses)
        fixed (int* py = labels)
            ParallelRange.For(new RowsBody(pz, py, pd, pl, classes, gradPerRow), rows, 1,
                Math.Max(1, MinElementsPerThread / classes));
        double total = 0;
        for (int i = 0; i < rows; i++)
            if (labels[i] != IgnoreIndex) total -= losses[i];
        return total;
    }

    // Below this many logits per thread a second core costs more than it saves.
    private const int MinElementsPerThread = 32 * 1024;

    // Grown once per thread to the largest batch (and row) seen: a warm step allocates nothing.
    [ThreadStatic] private static float[]? t_losses, t_row;

    private readonly unsafe struct RowsBody(float* logits, int* labels, float* dLogits, float* losses, int classes,
        float gradPerRow) : IRangeBody
    {
        public void Run(int start, int end)
        {
            // The rows' log-probabilities go into their gradient's rows, all in one call; or, when the gradient is
            // written over the logits (NllSumInPlace), row by row into a scratch row of this thread. The same calls on
            // the same values either way, so the same bits.
            bool inPlace = logits == dLogits;
            Span<float> scratch = inPlace
                ? (t_row is { } r && r.Length >= classes ? r : t_row = new float[classes]).AsSpan(0, classes)
                : default;
            if (!inPlace)
                LogSoftmax.Rows(new ReadOnlySpan<float>(logits + (long)start * classes, (end - start) * classes),
                    new Span<float>(dLogits + (long)start * classes, (end - start) * classes), end - start, classes);
            for (int i = start; i < end; i++)
            {
                int label = labels[i];
                var d = new Span<float>(dLogits + (long)i * classes, classes);
                if (label == IgnoreIndex)
                {
                    d.Clear();
                    continue;
                }
                Span<float> logp = d;
                if (inPlace)
                {
                    logp = scratch;
                    LogSoftmax.Rows(d, logp, 1, classes);
                }
                losses[i] = logp[label];
                if (gradPerRow != 0f)
                {
                    TensorPrimitives.Exp(logp, logp);                 // softmax
                    TensorPrimitives.Multiply(logp, gradPerRow, d);
                    d[label] -= gradPerRow;
                }
            }
        }
    }
}
