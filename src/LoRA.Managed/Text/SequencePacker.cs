namespace LoRA.Managed.Text;

/// <summary>
/// Packs a tokenised text into fixed <c>max_seq_length</c> windows with next-token targets, as SFT trainers do
/// with packing (TRL's <c>ConstantLengthDataset</c>: concatenate, cut into equal chunks, labels shifted by one).
/// The incomplete tail that cannot fill a last window (plus its one target) is dropped.
/// </summary>
public static class SequencePacker
{
    /// <summary>
    /// Cuts windows of <paramref name="maxSeqLength"/> tokens starting every <paramref name="stride"/> tokens
    /// (default: the window length, so windows do not overlap). A window needs T + 1 tokens (its last target).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The length or stride is not positive.</exception>
    public static PackedSequences Pack(ReadOnlySpan<int> tokens, int maxSeqLength, int stride = 0)
    {
        if (maxSeqLength <= 0)
            throw new ArgumentOutOfRangeException(nameof(maxSeqLength), maxSeqLength,
                "SequencePacker: max_seq_length must be positive.");
        if (stride < 0)
            throw new ArgumentOutOfRangeException(nameof(stride), stride,
                "SequencePacker: the stride must be positive (or 0 for max_seq_length).");
        if (stride == 0) stride = maxSeqLength;
        int count = tokens.Length < maxSeqLength + 1 ? 0 : (tokens.Length - maxSeqLength - 1) / stride + 1;
        return new PackedSequences(tokens.ToArray(), maxSeqLength, stride, count);
    }
}
