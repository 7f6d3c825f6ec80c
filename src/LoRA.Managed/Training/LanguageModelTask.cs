using LoRA.Managed.Autograd;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using LoRA.Managed.Text;

namespace LoRA.Managed.Training;

/// <summary>
/// Causal language modelling for <see cref="Trainer"/>: next-token cross-entropy of any
/// <see cref="ICausalLanguageModel"/> (a PEFT model over one is one too) on packed windows, reshuffled every epoch from
/// a generator; evaluation reports <c>eval_loss</c> (nats per token, <see cref="LanguageModelLoss.Mean"/>) on the
/// validation windows.
/// </summary>
public sealed class LanguageModelTask : IResumableTask<LmBatch>
{
    private readonly PackedSequences _train;
    private readonly PackedSequences? _validation;
    private readonly TorchGenerator? _generator;
    private readonly int _maxEvalWindows;
    private LmBatchIterator? _iterator;

    /// <summary>Trains on <paramref name="train"/>; evaluates on the first <paramref name="maxEvalWindows"/> validation
    /// windows (all when 0).</summary>
    /// <exception cref="ArgumentException">There are no training windows.</exception>
    public LanguageModelTask(PackedSequences train, PackedSequences? validation = null,
        TorchGenerator? generator = null, int maxEvalWindows = 0)
    {
        _train = train ?? throw new ArgumentNullException(nameof(train));
        if (train.Count == 0)
            throw new ArgumentException("LanguageModelTask: no training windows (is the text shorter than " +
                "max_seq_length + 1?).");
        ArgumentOutOfRangeException.ThrowIfNegative(maxEvalWindows);
        _validation = validation;
        _generator = generator;
        _maxEvalWindows = maxEvalWindows;
    }

    /// <inheritdoc />
    public int BatchesPerEpoch(int batchSize) => Iterator(batchSize).BatchesPerEpoch;

    /// <inheritdoc />
    public IEnumerable<LmBatch> Batches(int batchSize) => Iterator(batchSize).EpochReusingBuffers(0);

    /// <inheritdoc />
    public IEnumerable<LmBatch> Batches(int batchSize, int skip) => Iterator(batchSize).EpochReusingBuffers(skip);

    /// <inheritdoc />
    public TorchGenerator? OrderGenerator => _generator;

    /// <inheritdoc />
    public int SampleCount(LmBatch batch) => batch.Batch;

    /// <inheritdoc />
    public Tensor ComputeLoss(Module model, LmBatch batch) =>
        LanguageModel(model).Loss(batch.Inputs, batch.Targets, batch.Batch, batch.Time);

    /// <inheritdoc />
    public IReadOnlyDictionary<string, double> Evaluate(Module model, int batchSize) =>
        _validation is null
            ? new Dictionary<string, double>()
            : new Dictionary<string, double> { ["eval_loss"] = LanguageModelLoss.Mean(LanguageModel(model), _validation,
                batchSize, _maxEvalWindows) };

    /// <summary>The language model <paramref name="model"/> is.</summary>
    /// <exception cref="ArgumentException">It is not one.</exception>
    public static ICausalLanguageModel LanguageModel(Module model) => model as ICausalLanguageModel
        ?? throw new ArgumentException("LanguageModelTask: expected a causal language model, got " +
            $"{model?.GetType().Name ?? "null"}.");

    private LmBatchIterator Iterator(int batchSize)
    {
        if (_iterator is null || _iterator.BatchSize != batchSize)
            _iterator = new LmBatchIterator(_train, batchSize, _generator);
        return _iterator;
    }
}
