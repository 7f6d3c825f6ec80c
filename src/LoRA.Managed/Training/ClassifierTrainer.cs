using System.Diagnostics;
using LoRA.Managed.Autograd;
using LoRA.Managed.Data;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Training;

/// <summary>
/// The classic PyTorch classification recipe: for each batch <c>zero_grad</c>, forward, cross-entropy,
/// <c>backward</c>, <c>step</c> (run by <see cref="Trainer"/>); and an evaluation pass under no-grad in eval mode.
/// </summary>
/// <remarks>
/// Every step's loss is recorded in <see cref="Losses"/>. A NaN or infinite loss stops training with
/// an exception naming the epoch and step, since every later step would only spread the NaN.
/// </remarks>
public sealed class ClassifierTrainer
{
    private readonly List<float> _losses = [];

    /// <summary>The loss of every step taken by <see cref="Fit"/>, across calls, in order.</summary>
    public IReadOnlyList<float> Losses => _losses;

    /// <summary>
    /// Trains <paramref name="model"/> for <paramref name="epochs"/> passes over <paramref name="loader"/>: a thin
    /// wrapper over <see cref="Trainer"/> (one step per batch, no accumulation, no clipping, no weight decay beyond the
    /// optimiser's own), so the blog's recipe runs through the one training loop of the library.
    /// </summary>
    /// <param name="model">The classifier; its output is (B, classes) logits.</param>
    /// <param name="optimizer">Updates the model's parameters.</param>
    /// <param name="loader">The training batches (reshuffled each epoch if the loader shuffles).</param>
    /// <param name="epochs">Passes over the data (≥ 0).</param>
    /// <param name="schedule">Sets the learning rate before each step (step index counted from the optimiser's <see cref="Optimizer.StepCount"/>); null keeps it constant.</param>
    /// <param name="progress">Receives a report after every step, synchronously on this thread.</param>
    /// <param name="cancellation">Checked between steps.</param>
    /// <param name="configure">Adjusts the trainer's arguments, e.g. to write checkpoints (<see cref="TrainingArguments.SaveStrategy"/>, <see cref="TrainingArguments.SaveOnCancel"/>).</param>
    /// <param name="resumeFrom">A checkpoint folder to continue from (see <see cref="Trainer.Train{TBatch}"/>); its step losses join <see cref="Losses"/>.</param>
    /// <exception cref="ArithmeticException">A loss is NaN or infinite; the message names the epoch and step.</exception>
    public void Fit(Module model, Optimizer optimizer, DataLoader loader, int epochs,
        LrSchedule? schedule = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default,
        Func<TrainingArguments, TrainingArguments>? configure = null, string? resumeFrom = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(loader);
        ArgumentOutOfRangeException.ThrowIfNegative(epochs);
        model.Train();
        if (epochs == 0) return;

        var args = new TrainingArguments
        {
            PerDeviceTrainBatchSize = loader.BatchSize,
            NumTrainEpochs = epochs,
            // Only the schedule below sets the rate; the argument must merely be valid.
            LearningRate = optimizer.LearningRate > 0 ? optimizer.LearningRate : 1e-3,
            MaxGradNorm = null,
            LoggingSteps = int.MaxValue,
        };
        if (configure is not null) args = configure(args);
        // A constant schedule at the optimiser's own rate writes back the same double: the steps are those of
        // the plain loop this replaced, bit for bit (ClassifierTrainerTests compares them).
        var trainer = new Trainer(model, args, optimizer, schedule ?? LrSchedules.Constant(optimizer.LearningRate));
        try
        {
            trainer.Train(new ClassificationTask(loader), progress, cancellation, resumeFrom);
        }
        finally
        {
            _losses.AddRange(trainer.StepLosses);
        }
    }

    /// <summary>
    /// Accuracy and confusion matrix of <paramref name="model"/> on <paramref name="loader"/>'s samples: in eval
    /// mode and under <see cref="Tape.NoGrad"/> (the model's previous train/eval mode is restored afterwards).
    /// The prediction is the arg-max logit (the first on ties, as <c>torch.argmax</c>).
    /// </summary>
    public static EvaluationResult Evaluate(Module model, DataLoader loader) => Evaluate(model, loader, withLoss: false, out _);

    /// <summary>
    /// <see cref="Evaluate(Module, DataLoader)"/>, and with <paramref name="withLoss"/> also the mean cross-entropy from the
    /// same logits (one forward pass serves both, as <see cref="ClassificationTask.Evaluate"/> reports both).
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
                        throw new InvalidOperationException($"Evaluate: the model returned {Shapes.Format(logits.Shape)} for a batch of {batch.Size}; expected (B, classes).");
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
                            throw new InvalidOperationException($"Evaluate: label {label} of sample {batch.Indices[i]} is outside the model's {classes} classes.");
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

    /// <summary>Accuracy and confusion matrix on a whole dataset, in batches of <paramref name="batchSize"/>, in order.</summary>
    public static EvaluationResult Evaluate(Module model, MnistDataset dataset, int batchSize = 1000) =>
        Evaluate(model, new DataLoader(dataset, batchSize));

    private static int ArgMax(ReadOnlySpan<float> row)
    {
        int best = 0;
        for (int j = 1; j < row.Length; j++) if (row[j] > row[best]) best = j;
        return best;
    }
}
