using LoRA.Managed.Kernels;

namespace LoRA.Managed.Models.Hf;

/// <summary>How <see cref="HfModel.Load(string, HfLoadOptions)"/> stores the base and whether it keeps a quantised
/// copy of it for the next load (<see cref="QuantizedWeightCache"/>).</summary>
public sealed record HfLoadOptions
{
    /// <summary>The storage of every Linear weight but the LM head (float32 by default).</summary>
    public BaseDType BaseDType { get; init; } = BaseDType.F32;

    /// <summary>The storage of the token (and position) embeddings and the LM head, tied or not; null means
    /// <see cref="HfModel.DefaultEmbeddingDType"/> of <see cref="BaseDType"/> (bf16 under int8 and nf4).</summary>
    public BaseDType? EmbeddingDType { get; init; }

    /// <summary>
    /// Reads the quantised weights from a cache made by an earlier load of the same files and writes one when there
    /// is none (default true; ignored for float32). A cache that does not match the files exactly, or is damaged, is
    /// rebuilt and reported through <see cref="Warning"/>, never used.
    /// </summary>
    public bool QuantizedCache { get; init; } = true;

    /// <summary>
    /// The cache file to use instead of the placement rule (<see cref="QuantizedWeightCache.PathFor"/>: beside the
    /// model, or under the cache root when the model's folder is not writable).
    /// </summary>
    public string? QuantizedCachePath { get; init; }

    /// <summary>The folder under which caches of read-only model folders go; default
    /// <c>Data.DataCache.Folder("quantized")</c>.</summary>
    public string? QuantizedCacheRoot { get; init; }

    /// <summary>Receives one line per cache that was not used or could not be written (e.g.
    /// <c>warning: …/quantized-nf4.bin: checksum mismatch; rebuilding</c>); null ignores them.</summary>
    public Action<string>? Warning { get; init; }
}
