using System.Collections;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Data;

/// <summary>
/// <c>torch.utils.data.DataLoader</c> for an <see cref="MnistDataset"/>: batches of <see cref="BatchSize"/>
/// samples, the last partial batch kept (<c>drop_last=False</c>), reshuffled at the start of every
/// enumeration (epoch) from a seeded <see cref="TorchGenerator"/> when <see cref="Shuffle"/> is set.
/// </summary>
/// <remarks>
/// <para>The loader owns two batch buffers, one full-sized and one for the partial last batch, and refills
/// them in place: enumerating allocates nothing per sample or per batch. Bytes become floats per batch.</para>
/// <para>Each epoch's order is drawn exactly as PyTorch 1.13's <c>DataLoader(shuffle=True, num_workers=0)</c>
/// draws it from the global generator: starting the epoch takes a 64-bit draw (the iterator's
/// <c>_base_seed</c>, which only worker processes use), <c>RandomSampler</c> takes a second, seeds a fresh
/// generator with it and returns <c>torch.randperm(n, generator)</c>. So after <c>torch.manual_seed(s)</c> and
/// the same model construction, seed s gives PyTorch's initial weights and PyTorch's batches, and a run here
/// differs from PyTorch's only by floating-point rounding.</para>
/// </remarks>
public sealed class DataLoader : IEnumerable<Batch>
{
    private readonly TorchGenerator? _generator;
    private readonly TorchGenerator? _sampler;
    private readonly int[] _order;
    private readonly Batch _full;
    private readonly Batch? _partial;

    /// <summary>Creates the loader.</summary>
    /// <param name="dataset">The samples.</param>
    /// <param name="batchSize">Samples per batch (≥ 1).</param>
    /// <param name="shuffle">Reshuffle every epoch (needs <paramref name="generator"/>).</param>
    /// <param name="generator">The generator that draws each epoch's order.</param>
    /// <exception cref="ArgumentException">The dataset is empty, the batch size is below 1, or shuffling was asked
    /// without a generator.</exception>
    public DataLoader(MnistDataset dataset, int batchSize, bool shuffle = false, TorchGenerator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (batchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize,
                "DataLoader: the batch size must be at least 1.");
        if (dataset.Count == 0)
            throw new ArgumentException("DataLoader: the dataset is empty (did a digit filter remove every sample?).",
                nameof(dataset));
        if (shuffle && generator is null)
            throw new ArgumentException("DataLoader: shuffling needs a TorchGenerator (every random draw takes an " +
                "explicit seed).", nameof(generator));
        Dataset = dataset;
        BatchSize = batchSize;
        Shuffle = shuffle;
        _generator = generator;
        if (shuffle) _sampler = new TorchGenerator();
        _order = new int[dataset.Count];
        if (!shuffle) for (int i = 0; i < _order.Length; i++) _order[i] = i; // the order never changes
        int fullSize = Math.Min(batchSize, dataset.Count);
        _full = new Batch(fullSize, dataset.ImageSize);
        int rest = dataset.Count % batchSize;
        if (rest != 0 && dataset.Count > batchSize) _partial = new Batch(rest, dataset.ImageSize);
    }

    /// <summary>The samples.</summary>
    public MnistDataset Dataset { get; }

    /// <summary>Samples per batch.</summary>
    public int BatchSize { get; }

    /// <summary>Whether each epoch is reshuffled.</summary>
    public bool Shuffle { get; }

    /// <summary>Number of samples per epoch.</summary>
    public int Count => Dataset.Count;

    /// <summary>Batches per epoch, counting the partial last one: ⌈N / B⌉.</summary>
    public int BatchCount => (Dataset.Count + BatchSize - 1) / BatchSize;

    /// <summary>The generator that draws each epoch's order, or null.</summary>
    public TorchGenerator? Generator => _generator;

    /// <summary>
    /// Starts an epoch: draws a new order if shuffling, then yields each batch, refilled in place.
    /// </summary>
    public IEnumerator<Batch> GetEnumerator() => Batches(0).GetEnumerator();

    /// <summary>
    /// Starts an epoch as <see cref="GetEnumerator"/> does (the whole order is drawn, so the generator advances the
    /// same), then yields the batches from index <paramref name="skip"/> on; the skipped ones are not filled. Resuming
    /// an epoch from a checkpoint: restore the generator's state from before the epoch, then pass the batches already
    /// used.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="skip"/> is negative or beyond
    /// <see cref="BatchCount"/>.</exception>
    public IEnumerable<Batch> Batches(int skip)
    {
        if (skip < 0 || skip > BatchCount)
            throw new ArgumentOutOfRangeException(nameof(skip), skip,
                $"DataLoader: can skip 0 to {BatchCount} batches.");
        return Epoch(skip);
    }

    private IEnumerable<Batch> Epoch(int skip)
    {
        if (Shuffle)
        {
            // _BaseDataLoaderIter's _base_seed: drawn every epoch, used only by worker processes
            _ = _generator!.NextInt64();
            _sampler!.ManualSeed((ulong)_generator.NextInt64()); // RandomSampler: a fresh generator from one draw
            _sampler.RandPerm(_order);
        }
        for (int start = skip * BatchSize; start < _order.Length; start += BatchSize)
        {
            int size = Math.Min(BatchSize, _order.Length - start);
            Batch batch = size == _full.Size ? _full : _partial!;
            Fill(batch, _order.AsSpan(start, size));
            int next = start + BatchSize;
            if (next < _order.Length) Prefetch(_order.AsSpan(next, Math.Min(BatchSize, _order.Length - next)));
            yield return batch;
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    // The next batch's images are scattered over the whole set (47 MB for MNIST), so filling a batch was mostly
    // waiting for memory. Asking for their cache lines now lets memory fetch them while the training step computes.
    private void Prefetch(ReadOnlySpan<int> indices)
    {
        for (int i = 0; i < indices.Length; i++) Dataset.PrefetchImage(indices[i]);
    }

    private void Fill(Batch batch, ReadOnlySpan<int> indices)
    {
        Span<float> images = batch.Images.Data;
        int pixels = Dataset.ImageSize;
        for (int i = 0; i < indices.Length; i++)
        {
            int sample = indices[i];
            Dataset.CopyImage(sample, images.Slice(i * pixels, pixels));
            batch.Labels[i] = Dataset.Label(sample);
            batch.Indices[i] = sample;
        }
    }
}
