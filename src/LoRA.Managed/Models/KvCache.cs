using LoRA.Managed.Autograd;

namespace LoRA.Managed.Models;

/// <summary>
/// The keys and values a causal LM has computed so far, per layer (capacity, H_kv, D) row-major, so each new token
/// costs one position's work instead of re-running the prefix (Hugging Face's <c>past_key_values</c>).
/// </summary>
public sealed class KvCache
{
    private readonly float[][] _keys, _values;

    /// <summary>Creates an empty cache for <paramref name="capacity"/> positions.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public KvCache(int layers, int capacity, int kvHeads, int headDim)
    {
        if (layers <= 0 || capacity <= 0 || kvHeads <= 0 || headDim <= 0)
            throw new ArgumentOutOfRangeException(nameof(capacity),
                $"KvCache: sizes must be positive (layers {layers}, capacity {capacity}, kv heads {kvHeads}, " +
                $"head size {headDim}).");
        Capacity = capacity;
        RowSize = kvHeads * headDim;
        _keys = new float[layers][];
        _values = new float[layers][];
        for (int l = 0; l < layers; l++)
        {
            _keys[l] = new float[(long)capacity * RowSize];
            _values[l] = new float[(long)capacity * RowSize];
        }
    }

    private readonly TensorArena[] _blockArenas = [new(), new()];

    /// <summary>
    /// While the caller runs a step in a <see cref="TensorArena"/> (scoring, generation), block
    /// <paramref name="layer"/> runs in one of two arenas that take turns, so a chunk holds two blocks' activations
    /// instead of every block's (<see cref="TensorArena.EnterNested"/>); without an outer arena nothing changes.
    /// </summary>
    internal NestedArenaScope BlockScratch(int layer) =>
        Tape.Current.Arena is null ? default : _blockArenas[layer & 1].EnterNested();

    /// <summary>Tensors the two block arenas hold (for tests: they, not the caller's arena, hold the
    /// blocks').</summary>
    internal int BlockScratchTensorCount => _blockArenas[0].TensorCount + _blockArenas[1].TensorCount;

    /// <summary>Positions the cache can hold.</summary>
    public int Capacity { get; }

    /// <summary>Positions stored so far; the next token's position.</summary>
    public int Length { get; private set; }

    /// <summary>Floats per position and layer (H_kv·D).</summary>
    public int RowSize { get; }

    /// <summary>Layer <paramref name="layer"/>'s keys, (capacity, H_kv, D).</summary>
    public float[] Keys(int layer) => _keys[layer];

    /// <summary>Layer <paramref name="layer"/>'s values, (capacity, H_kv, D).</summary>
    public float[] Values(int layer) => _values[layer];

    /// <summary>Throws unless <paramref name="count"/> more positions fit.</summary>
    /// <exception cref="InvalidOperationException">The cache is full.</exception>
    public void EnsureRoom(int count)
    {
        if (Length + count > Capacity)
            throw new InvalidOperationException($"KvCache: {Length} positions stored, {count} more do not fit the " +
                $"capacity {Capacity}.");
    }

    /// <summary>Writes layer <paramref name="layer"/>'s keys and values for <paramref name="count"/> new positions at
    /// <see cref="Length"/>.</summary>
    public void Write(int layer, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int count)
    {
        EnsureRoom(count);
        keys.Slice(0, count * RowSize).CopyTo(_keys[layer].AsSpan(Length * RowSize));
        values.Slice(0, count * RowSize).CopyTo(_values[layer].AsSpan(Length * RowSize));
    }

    /// <summary>Marks <paramref name="count"/> positions as stored (after every layer wrote them).</summary>
    public void Advance(int count)
    {
        EnsureRoom(count);
        Length += count;
    }

    /// <summary>Forgets every position (the buffers are reused).</summary>
    public void Reset() => Length = 0;
}
