using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Training;

/// <summary>
/// What <see cref="Trainer"/> needs to train any model on any data: batches for one epoch, the loss of a batch,
/// and (optionally) evaluation metrics. Implementations: <see cref="ClassificationTask"/>,
/// <see cref="LanguageModelTask"/>.
/// </summary>
/// <typeparam name="TBatch">The task's batch type; the trainer only passes it back to
/// <see cref="ComputeLoss"/>.</typeparam>
public interface ITrainingTask<TBatch>
{
    /// <summary>Micro-batches one epoch yields at <paramref name="batchSize"/>.</summary>
    int BatchesPerEpoch(int batchSize);

    /// <summary>One epoch's micro-batches of <paramref name="batchSize"/> (a shuffling task draws the order when
    /// enumeration starts).</summary>
    IEnumerable<TBatch> Batches(int batchSize);

    /// <summary>Samples in a batch (weights the epoch's mean loss).</summary>
    int SampleCount(TBatch batch);

    /// <summary>The scalar mean loss of <paramref name="batch"/> under <paramref name="model"/>, recorded on the tape
    /// (HF's <c>compute_loss</c>).</summary>
    Tensor ComputeLoss(Module model, TBatch batch);

    /// <summary>
    /// Metrics on the evaluation data with HF's <c>eval_</c> prefix (e.g. <c>eval_loss</c>, <c>eval_accuracy</c>),
    /// or an empty dictionary when the task has no evaluation data. Must leave the model's train/eval mode as it found
    /// it.
    /// </summary>
    IReadOnlyDictionary<string, double> Evaluate(Module model, int batchSize);
}
