using System.Diagnostics;
using LoRA.Managed.Autograd;
using LoRA.Managed.Data;
using LoRA.Managed.Losses;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Training;

/// <summary>
/// The classic PyTorch classification loop, nothing more: for each batch <c>zero_grad</c>, forward,
/// cross-entropy, <c>backward</c>, <c>step</c>; and an evaluation pass under no-grad in eval mode.
/// </summary>
/// <remarks>
/// Every step's loss is recorded in <see cref="Losses"/>. A NaN or infinite loss stops training with
/// an exception naming the epoch and step, since every later step would only spread the NaN.
/// </remarks>
public sealed class ClassifierTrainer
{
    private readonly CrossEntropyLoss _criterion = new();
    private readonly List<float> _losses = [];

    /// <summary>The loss of every step taken by <see cref="Fit"/>, across calls, in order.</summary>
    public IReadOnlyList<float> Losses => _losses;

    /// <summary>Trains <paramref name="model"/> for <paramref name="epochs"/> passes over <paramref name="loader"/>.</summary>
    /// <param name="model">The classifier; its output is (B, classes) logits.</param>
    /// <param name="optimizer">Updates the model's parameters.</param>
    /// <param name="loader">The training batches (reshuffled each epoch if the loader shuffles).</param>
    /// <param name="epochs">Passes over the data (≥ 0).</param>
    /// <param name="schedule">Sets the learning rate before each step (step index counted from the optimiser's <see cref="Optimizer.StepCount"/>); null keeps it constant.</param>
    /// <param name="progress">Receives a report after every step, synchronously on this thread.</param>
    /// <param name="cancellation">Checked between steps.</param>
    /// <exception cref="ArithmeticException">A loss is NaN or infinite; the message names the epoch and step.</exception>
    public void Fit(Module model, Optimizer optimizer, DataLoader loader, int epochs,
        LrSchedule? schedule = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(loader);
        ArgumentOutOfRangeException.ThrowIfNegative(epochs);

        model.Train();
        // Every step runs the same ops on the same shapes, so activations and gradients live in an
        // arena and are reused: a steady-state step allocates nothing (see TensorArena).
        var arena = new TensorArena();
        int globalStep = 0;
        for (int epoch = 1; epoch <= epochs; epoch++)
        {
            var clock = Stopwatch.StartNew();
            double lossSum = 0;
            int samples = 0;
            foreach (Batch batch in loader)
            {
                cancellation.ThrowIfCancellationRequested();
                using ArenaScope step = arena.Activate();
                schedule?.Apply(optimizer, optimizer.StepCount);
                optimizer.ZeroGrad();
                Tensor logits = model.Forward(batch.Images);
                Tensor loss = _criterion.Forward(logits, batch.Labels);
                float value = loss.Item();
                globalStep++;
                if (!float.IsFinite(value))
                {
                    Tape.Current.Clear();
                    throw new ArithmeticException(
                        $"Training diverged: loss is {value} at epoch {epoch}, step {batch.Index + 1} of {loader.BatchCount} (global step {globalStep}); lower the learning rate or normalise the inputs.");
                }
                loss.Backward();
                optimizer.Step();

                _losses.Add(value);
                lossSum += (double)value * batch.Size;
                samples += batch.Size;
                progress?.Report(new TrainingProgress(epoch, epochs, batch.Index + 1, loader.BatchCount, globalStep,
                    value, lossSum / samples, samples / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), optimizer.LearningRate));
            }
        }
    }

    /// <summary>
    /// Accuracy and confusion matrix of <paramref name="model"/> on <paramref name="loader"/>'s samples: in eval
    /// mode and under <see cref="Tape.NoGrad"/> (the model's previous train/eval mode is restored afterwards).
    /// The prediction is the arg-max logit (the first on ties, as <c>torch.argmax</c>).
    /// </summary>
    public static EvaluationResult Evaluate(Module model, DataLoader loader)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(loader);
        bool wasTraining = model.Training;
        model.Eval();
        int[,]? confusion = null;
        try
        {
            using (Tape.NoGrad())
            {
                foreach (Batch batch in loader)
                {
                    Tensor logits = model.Forward(batch.Images);
                    if (logits.Rank != 2 || logits.Shape[0] != batch.Size)
                        throw new InvalidOperationException($"Evaluate: the model returned {Shapes.Format(logits.Shape)} for a batch of {batch.Size}; expected (B, classes).");
                    int classes = logits.Shape[1];
                    confusion ??= new int[classes, classes];
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
