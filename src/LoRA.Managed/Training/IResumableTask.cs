using LoRA.Managed.Tensors;

namespace LoRA.Managed.Training;

/// <summary>
/// A task whose epoch can be restarted part-way, so <see cref="Trainer"/> can resume a run exactly: the generator that
/// draws each epoch's order (whose state a checkpoint keeps) and the epoch's batches from a given one on.
/// </summary>
/// <typeparam name="TBatch">The task's batch type.</typeparam>
/// <remarks>
/// A task that is not resumable is still resumed by enumerating and dropping the epoch's first batches, which
/// reproduces the run only if its order does not depend on state the checkpoint lacks.
/// </remarks>
public interface IResumableTask<TBatch> : ITrainingTask<TBatch>
{
    /// <summary>The generator that draws each epoch's order when enumeration starts, or null when the order is
    /// fixed.</summary>
    TorchGenerator? OrderGenerator { get; }

    /// <summary>
    /// One epoch's micro-batches from index <paramref name="skip"/> on: the whole epoch's order is drawn first (the
    /// same draws as <see cref="ITrainingTask{TBatch}.Batches"/>), then the first <paramref name="skip"/> batches are
    /// passed over without being built.
    /// </summary>
    IEnumerable<TBatch> Batches(int batchSize, int skip);
}
