namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// A run of text on its way to the model: <see cref="Length"/> characters of <see cref="Source"/> from
/// <see cref="Start"/>. <see cref="AtTextStart"/> is true when the run begins at offset 0 of the caller's text,
/// which is what the <c>Metaspace</c> pre-tokenizer's <c>prepend_scheme: "first"</c> asks
/// (<c>offsets_original().0 == 0</c> in HF).
/// </summary>
internal readonly record struct TextPiece(string Source, int Start, int Length, bool AtTextStart)
{
    public ReadOnlySpan<char> Span => Source.AsSpan(Start, Length);

    public static TextPiece Whole(string text, bool atTextStart) => new(text, 0, text.Length, atTextStart);

    /// <summary>The sub-run [<paramref name="from"/>, <paramref name="to"/>) of this piece, in the piece's own
    /// indices.</summary>
    public TextPiece Slice(int from, int to) => new(Source, Start + from, to - from, AtTextStart && from == 0);
}
