using LoRA.Managed.Autograd;
using LoRA.Managed.Data;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Training;

/// <summary>
/// Image classification for <see cref="Trainer"/>: cross-entropy of the model's (B, classes) logits on
/// <see cref="DataLoader"/> batches; evaluation reports <c>eval_loss</c> (sample-weighted mean cross-entropy) and
/// <c>eval_accuracy</c>.
/// </summary>
public sealed class ClassificationTask : IResumableTask<Batch>
{
    private readonly MnistDataset? _train, _eval;
    private readonly TorchGenerator? _generator;
    private DataLoader? _loader;
    private DataLoader? _evalLoader;

    /// <summary>Trains on <paramref name="train"/>, reshuffled every epoch from <paramref name="generator"/> (in order
    /// when null).</summary>
    public ClassificationTask(MnistDataset train, MnistDataset? eval = null, TorchGenerator? generator = null)
    {
        _train = train ?? throw new ArgumentNullException(nameof(train));
        _eval = eval;
        _generator = generator;
    }

    /// <summary>Trains on a ready loader (its batch size must then equal the trainer's), e.g. to keep its generator's
    /// draws.</summary>
    public ClassificationTask(DataLoader loader, MnistDataset? eval = null)
    {
        _loader = loader ?? throw new ArgumentNullException(nameof(loader));
        _eval = eval;
    }

    /// <inheritdoc />
    public int BatchesPerEpoch(int batchSize) => Loader(batchSize).BatchCount;

    /// <inheritdoc />
    public IEnumerable<Batch> Batches(int batchSize) => Loader(batchSize);

    /// <inheritdoc />
    public IEnumerable<Batch> Batches(int batchSize, int skip) => Loader(batchSize).Batches(skip);

    /// <inheritdoc />
    public TorchGenerator? OrderGenerator => _loader is { } l ? (l.Shuffle ? l.Generator : null) : _generator;

    /// <inheritdoc />
    public int SampleCount(Batch batch) => batch.Size;

    /// <inheritdoc />
    public Tensor ComputeLoss(Module model, Batch batch) =>
        Functional.CrossEntropy(model.Forward(batch.Images), batch.Labels);

    /// <inheritdoc />
    public IReadOnlyDictionary<string, double> Evaluate(Module model, int batchSize)
    {
        if (_eval is null) return new Dictionary<string, double>();
        // its batch buffers are MBs: keep them
        if (_evalLoader?.BatchSize != batchSize) _evalLoader = new DataLoader(_eval, batchSize);
        EvaluationResult result = ClassifierEvaluation.Evaluate(model, _evalLoader, withLoss: true, out double loss);
        return new Dictionary<string, double> { ["eval_loss"] = loss, ["eval_accuracy"] = result.Accuracy };
    }

    private DataLoader Loader(int batchSize)
    {
        if (_loader is not null)
        {
            if (_loader.BatchSize != batchSize)
                throw new ArgumentException($"ClassificationTask: the loader's batch size is {_loader.BatchSize} but " +
                    $"the trainer asks for {batchSize} (per_device_train_batch_size).");
            return _loader;
        }
        return _loader = new DataLoader(_train!, batchSize, shuffle: _generator is not null, generator: _generator);
    }
}
