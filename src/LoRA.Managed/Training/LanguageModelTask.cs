using LoRA.Managed.Models;
using LoRA.Managed.Autograd;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using LoRA.Managed.Text;

namespace LoRA.Managed.Training;

/// <summary>
/// Causal language modelling for <see cref="Trainer"/>: next-token cross-entropy of a <see cref="GptModel"/> (or a
/// <see cref="PeftModel"/> wrapping one) on packed windows, reshuffled every epoch from a generator; evaluation
/// reports <c>eval_loss</c> (nats per token, <see cref="LanguageModelLoss.Mean"/>) on the validation windows.
/// </summary>
public sealed class LanguageModelTask : IResumableTask<LmBatch>
{
    private readonly PackedSequences _train;
    private readonly PackedSequences? _validation;
    private readonly TorchGenerator? _generator;
    private readonly int _maxEvalWindows;
    private LmBatchIterator? _iterator;

    /// <summary>Trains on <paramref name="train"/>; evaluates on the first <paramref name="maxEvalWindows"/> validation windows (all when 0).</summary>
    /// <exception cref="ArgumentException">There are no training windows.</exception>
    public LanguageModelTask(PackedSequences train, PackedSequences? validation = null, TorchGenerator? generator = null, int maxEvalWindows = 0)
    {
        _train = train ?? throw new ArgumentNullException(nameof(train));
        if (train.Count == 0) throw new ArgumentException("LanguageModelTask: no training windows (is the text shorter than max_seq_length + 1?).");
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
        Functional.CrossEntropy(Gpt(model).Forward(batch.Inputs, batch.Batch, batch.Time), batch.Targets);

    /// <inheritdoc />
    public IReadOnlyDictionary<string, double> Evaluate(Module model, int batchSize) =>
        _validation is null
            ? new Dictionary<string, double>()
            : new Dictionary<string, double> { ["eval_loss"] = LanguageModelLoss.Mean(Gpt(model), _validation, batchSize, _maxEvalWindows) };

    /// <summary>The GPT inside <paramref name="model"/>: itself, or a <see cref="PeftModel"/>'s base (whose layers carry the adapters).</summary>
    /// <exception cref="ArgumentException">The model is neither.</exception>
    public static GptModel Gpt(Module model) => model switch
    {
        GptModel g => g,
        PeftModel { BaseModel: GptModel g } => g,
        _ => throw new ArgumentException($"LanguageModelTask: expected a GptModel or a PeftModel over one, got {model?.GetType().Name ?? "null"}."),
    };

    private LmBatchIterator Iterator(int batchSize)
    {
        if (_iterator is null || _iterator.BatchSize != batchSize) _iterator = new LmBatchIterator(_train, batchSize, _generator);
        return _iterator;
    }
}
