using LoRA.Managed.Tensors;

namespace LoRA.Managed.Text;

/// <summary>One language-model batch: ids (Batch, Time) row-major and their next-token targets, both Batch·Time
/// long.</summary>
/// <param name="Inputs">Input ids, row b holding window b.</param>
/// <param name="Targets">Next-token targets, aligned with <paramref name="Inputs"/>.</param>
/// <param name="Batch">Windows in the batch.</param>
/// <param name="Time">Tokens per window.</param>
public readonly record struct LmBatch(int[] Inputs, int[] Targets, int Batch, int Time);

/// <summary>
/// Iterates packed windows in batches, like a <c>DataLoader</c> over them: with a generator, each epoch visits the
/// windows in a fresh permutation drawn from it (so one seed gives one order); without one, in order.
/// </summary>
public sealed class LmBatchIterator
{
    private readonly PackedSequences _data;
    private readonly TorchGenerator? _generator;
    private readonly int[] _order;
    private int[]? _fullInputs, _fullTargets, _partialInputs, _partialTargets;

    /// <summary>Creates the iterator; <paramref name="dropLast"/> skips a final batch smaller than
    /// <paramref name="batchSize"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The batch size is not positive.</exception>
    public LmBatchIterator(PackedSequences data, int batchSize, TorchGenerator? generator = null, bool dropLast = false)
    {
        _data = data ?? throw new ArgumentNullException(nameof(data));
        if (batchSize <= 0)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize,
                "LmBatchIterator: the batch size must be positive.");
        BatchSize = batchSize;
        DropLast = dropLast;
        _generator = generator;
        _order = new int[data.Count];
    }

    /// <summary>Windows per full batch.</summary>
    public int BatchSize { get; }

    /// <summary>Whether a short final batch is skipped.</summary>
    public bool DropLast { get; }

    /// <summary>Batches one epoch yields.</summary>
    public int BatchesPerEpoch => DropLast ? _data.Count / BatchSize : (_data.Count + BatchSize - 1) / BatchSize;

    /// <summary>One pass over the windows (shuffled when a generator was given; the permutation is drawn when
    /// enumeration starts).</summary>
    public IEnumerable<LmBatch> Epoch() => Epoch(0);

    /// <summary>
    /// One pass as <see cref="Epoch()"/> (the whole permutation is drawn), from batch <paramref name="skip"/> on; the
    /// skipped batches are not built. Resuming an epoch: restore the generator's state from before it, then skip.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="skip"/> is negative or beyond
    /// <see cref="BatchesPerEpoch"/>.</exception>
    public IEnumerable<LmBatch> Epoch(int skip)
    {
        if (skip < 0 || skip > BatchesPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(skip), skip,
                $"LmBatchIterator: can skip 0 to {BatchesPerEpoch} batches.");
        return Batches(skip, reuseBuffers: false);
    }

    /// <summary>
    /// As <see cref="Epoch(int)"/>, but every batch's id arrays are refilled in place (one pair for full batches, one
    /// for the partial last): the trainer's path, which is done with a batch before it asks for the next, so a
    /// steady-state step allocates no ids. A batch is valid only until the next one is yielded.
    /// </summary>
    internal IEnumerable<LmBatch> EpochReusingBuffers(int skip)
    {
        if (skip < 0 || skip > BatchesPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(skip), skip,
                $"LmBatchIterator: can skip 0 to {BatchesPerEpoch} batches.");
        return Batches(skip, reuseBuffers: true);
    }

    private IEnumerable<LmBatch> Batches(int skip, bool reuseBuffers)
    {
        for (int i = 0; i < _order.Length; i++) _order[i] = i;
        _generator?.Shuffle<int>(_order);
        int t = _data.MaxSeqLength;
        for (int start = skip * BatchSize; start < _order.Length; start += BatchSize)
        {
            int b = Math.Min(BatchSize, _order.Length - start);
            if (b < BatchSize && DropLast) yield break;
            int[] inputs, targets;
            if (!reuseBuffers) (inputs, targets) = (new int[b * t], new int[b * t]);
            else if (b == BatchSize)
                (inputs, targets) = (_fullInputs ??= new int[b * t], _fullTargets ??= new int[b * t]);
            else (inputs, targets) = (_partialInputs ??= new int[b * t], _partialTargets ??= new int[b * t]);
            for (int r = 0; r < b; r++)
            {
                _data.Inputs(_order[start + r]).CopyTo(inputs.AsSpan(r * t));
                _data.Targets(_order[start + r]).CopyTo(targets.AsSpan(r * t));
            }
            yield return new LmBatch(inputs, targets, b, t);
        }
    }
}
