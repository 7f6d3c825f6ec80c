using LoRA.Managed.Autograd;
using LoRA.Managed.Data;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Training;

/// <summary>
/// How well a classifier does: accuracy and confusion matrix from an evaluation pass under no-grad in eval mode
/// (what <see cref="ClassificationTask"/> reports during training, and what the recipes report after it).
/// </summary>
public static class ClassifierEvaluation
{
    /// <summary>
    /// Accuracy and confusion matrix of <paramref name="model"/> on <paramref name="loader"/>'s samples: in eval
    /// mode and under <see cref="Tape.NoGrad"/> (the model's previous train/eval mode is restored afterwards).
    /// The prediction is the arg-max logit (the first on ties, as <c>torch.argmax</c>).
    /// </summary>
    public static EvaluationResult Evaluate(Module model, DataLoader loader) =>
        Evaluate(model, loader, withLoss: false, out _);

    /// <summary>
    /// <see cref="Evaluate(Module, DataLoader)"/>, and with <paramref name="withLoss"/> also the mean cross-entropy
    /// from the same logits (one forward pass serves both, as <see cref="ClassificationTask.Evaluate"/> reports both).
    /// </summary>
    internal static EvaluationResult Evaluate(Module model, DataLoader loader, bool withLoss, out double meanLoss)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(loader);
        bool wasTraining = model.Training;
        model.Eval();
        int[,]? confusion = null;
        double lossSum = 0;
        int samples = 0;
        try
        {
            // Evaluation batches are large (1,000 rows by default), so their activations land on the large-object
            // heap, which only a full GC reclaims; an arena reuses them instead (unless the caller runs one already).
            var arena = Tape.Current.Arena is null ? new TensorArena() : null;
            using (Tape.NoGrad())
            {
                foreach (Batch batch in loader)
                {
                    using ArenaScope scope = arena is null ? default : arena.Activate();
                    Tensor logits = model.Forward(batch.Images);
                    if (logits.Rank != 2 || logits.Shape[0] != batch.Size)
                        throw new InvalidOperationException("Evaluate: the model returned " +
                            $"{Shapes.Format(logits.Shape)} for a batch of {batch.Size}; expected (B, classes).");
                    int classes = logits.Shape[1];
                    confusion ??= new int[classes, classes];
                    if (withLoss) lossSum += (double)Functional.CrossEntropy(logits, batch.Labels).Item() * batch.Size;
                    samples += batch.Size;
                    ReadOnlySpan<float> rows = logits.Data;
                    for (int i = 0; i < batch.Size; i++)
                    {
                        int predicted = ArgMax(rows.Slice(i * classes, classes));
                        int label = batch.Labels[i];
                        if ((uint)label >= (uint)classes)
                            throw new InvalidOperationException($"Evaluate: label {label} of sample " +
                                $"{batch.Indices[i]} is outside the model's {classes} classes.");
                        confusion[label, predicted]++;
                    }
                }
            }
        }
        finally
        {
            model.Train(wasTraining);
        }
        meanLoss = withLoss && samples > 0 ? lossSum / samples : double.NaN;
        return new EvaluationResult(confusion ?? new int[0, 0]);
    }

    /// <summary>Accuracy and confusion matrix on a whole dataset, in batches of <paramref name="batchSize"/>, in
    /// order.</summary>
    public static EvaluationResult Evaluate(Module model, MnistDataset dataset, int batchSize = 1000) =>
        Evaluate(model, new DataLoader(dataset, batchSize));

    private static int ArgMax(ReadOnlySpan<float> row)
    {
        int best = 0;
        for (int j = 1; j < row.Length; j++) if (row[j] > row[best]) best = j;
        return best;
    }
}
