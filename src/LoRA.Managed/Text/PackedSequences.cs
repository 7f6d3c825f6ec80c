namespace LoRA.Managed.Text;

/// <summary>
/// Fixed-length training windows cut from one token stream by <see cref="SequencePacker"/>: window i has
/// inputs <c>tokens[sᵢ .. sᵢ+T)</c> and next-token targets <c>tokens[sᵢ+1 .. sᵢ+T+1)</c>.
/// The windows share the token array (no copies).
/// </summary>
public sealed class PackedSequences
{
    private readonly int[] _tokens;
    private readonly int _stride;

    internal PackedSequences(int[] tokens, int maxSeqLength, int stride, int count)
    {
        _tokens = tokens;
        MaxSeqLength = maxSeqLength;
        _stride = stride;
        Count = count;
    }

    /// <summary>Length T of every window (max_seq_length).</summary>
    public int MaxSeqLength { get; }

    /// <summary>Number of windows.</summary>
    public int Count { get; }

    /// <summary>The input ids of window <paramref name="index"/> (T tokens).</summary>
    public ReadOnlySpan<int> Inputs(int index) => _tokens.AsSpan(Start(index), MaxSeqLength);

    /// <summary>The target ids of window <paramref name="index"/>: the inputs shifted left by one (T tokens).</summary>
    public ReadOnlySpan<int> Targets(int index) => _tokens.AsSpan(Start(index) + 1, MaxSeqLength);

    private int Start(int index)
    {
        if ((uint)index >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"PackedSequences: window {index} of {Count}.");
        return index * _stride;
    }
}
