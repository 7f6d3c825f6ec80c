using LoRA.Managed.Autograd;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using LoRA.Managed.Text;

namespace LoRA.Managed.Training;

/// <summary>
/// Supervised fine-tuning for <see cref="Trainer"/> (what TRL's <c>SFTTrainer</c> does with prompt/completion data):
/// next-token cross-entropy of a causal LM over the supervised targets of <see cref="CompletionExamples"/> only
/// (<see cref="Functional.CrossEntropy"/>), rows reshuffled every epoch from a generator; evaluation reports
/// <c>eval_loss</c>, the mean over every supervised target of the validation rows.
/// </summary>
public sealed class CompletionTask : IResumableTask<LmBatch>
{
    private readonly CompletionExamples _train;
    private readonly CompletionExamples? _validation;
    private readonly TorchGenerator? _generator;
    private int[] _order = [];
    private int[]? _fullInputs, _fullTargets, _partialInputs, _partialTargets;

    /// <summary>Trains on <paramref name="train"/>, evaluates on <paramref name="validation"/> when given.</summary>
    public CompletionTask(CompletionExamples train, CompletionExamples? validation = null,
        TorchGenerator? generator = null)
    {
        _train = train ?? throw new ArgumentNullException(nameof(train));
        _validation = validation;
        _generator = generator;
    }

    /// <inheritdoc />
    public int BatchesPerEpoch(int batchSize) => (_train.Count + batchSize - 1) / batchSize;

    /// <inheritdoc />
    public IEnumerable<LmBatch> Batches(int batchSize) => Batches(batchSize, 0);

    /// <inheritdoc />
    public TorchGenerator? OrderGenerator => _generator;

    /// <inheritdoc />
    public IEnumerable<LmBatch> Batches(int batchSize, int skip)
    {
        if (batchSize <= 0)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize,
                "CompletionTask: the batch size must be positive.");
        if (skip < 0 || skip > BatchesPerEpoch(batchSize))
            throw new ArgumentOutOfRangeException(nameof(skip), skip, "CompletionTask: skip is outside the epoch.");
        return Iterate(batchSize, skip);
    }

    private IEnumerable<LmBatch> Iterate(int batchSize, int skip)
    {
        if (_order.Length != _train.Count) _order = new int[_train.Count];
        for (int i = 0; i < _order.Length; i++) _order[i] = i;
        _generator?.Shuffle<int>(_order);
        int t = _train.Time;
        for (int start = skip * batchSize; start < _order.Length; start += batchSize)
        {
            int b = Math.Min(batchSize, _order.Length - start);
            // The trainer is done with a batch before it asks for the next, so the arrays are refilled in place.
            int[] inputs, targets;
            if (b == batchSize) (inputs, targets) = (Fit(ref _fullInputs, b * t), Fit(ref _fullTargets, b * t));
            else (inputs, targets) = (Fit(ref _partialInputs, b * t), Fit(ref _partialTargets, b * t));
            for (int r = 0; r < b; r++)
            {
                _train.Inputs(_order[start + r]).CopyTo(inputs.AsSpan(r * t));
                _train.Targets(_order[start + r]).CopyTo(targets.AsSpan(r * t));
            }
            yield return new LmBatch(inputs, targets, b, t);
        }
    }

    private static int[] Fit(ref int[]? buffer, int length) => buffer is { } a && a.Length == length ? a
        : buffer = new int[length];

    /// <inheritdoc />
    public int SampleCount(LmBatch batch) => batch.Batch;

    /// <inheritdoc />
    public Tensor ComputeLoss(Module model, LmBatch batch) =>
        LanguageModelTask.LanguageModel(model).Loss(batch.Inputs, batch.Targets, batch.Batch, batch.Time);

    /// <inheritdoc />
    public IReadOnlyDictionary<string, double> Evaluate(Module model, int batchSize)
    {
        if (_validation is null) return new Dictionary<string, double>();
        ICausalLanguageModel lm = LanguageModelTask.LanguageModel(model);
        bool wasTraining = model.Training;
        model.Eval();
        try
        {
            double total = 0;
            long count = 0;
            int t = _validation.Time;
            using var _ = Tape.NoGrad();
            for (int r = 0; r < _validation.Count; r++)
            {
                ReadOnlySpan<int> targets = _validation.Targets(r);
                int kept = 0;
                foreach (int y in targets) if (y != CompletionExamples.IgnoreIndex) kept++;
                if (kept == 0) continue;
                float mean = Functional.CrossEntropy(lm.Forward(_validation.Inputs(r), 1, t), targets).Item();
                total += (double)mean * kept;
                count += kept;
            }
            return new Dictionary<string, double> { ["eval_loss"] = count == 0 ? double.NaN : total / count };
        }
        finally
        {
            model.Train(wasTraining);
        }
    }
}
