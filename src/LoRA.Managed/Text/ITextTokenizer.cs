namespace LoRA.Managed.Text;

/// <summary>
/// What the language-model recipes need from a tokenizer (Hugging Face's <c>tokenizer(text)</c>, <c>decode</c>,
/// <c>eos_token_id</c> and a streaming decode for printing tokens as they are generated).
/// </summary>
public interface ITextTokenizer
{
    /// <summary>The ids of <paramref name="text"/>; with <paramref name="addSpecialTokens"/>, BOS/EOS as the
    /// tokenizer's config says.</summary>
    int[] Encode(string text, bool addSpecialTokens = true);

    /// <summary>The text of <paramref name="ids"/>.</summary>
    string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false);

    /// <summary>The end-of-sequence id, or null.</summary>
    int? EosTokenId { get; }

    /// <summary>A decoder fed one id at a time that returns the text each completes (empty while a character is
    /// incomplete).</summary>
    ITextStreamDecoder CreateStreamDecoder(bool skipSpecialTokens = true);
}

/// <summary>Incremental decoding: the concatenation of what <see cref="Append"/> returns is the decode of all ids so
/// far.</summary>
public interface ITextStreamDecoder
{
    /// <summary>Adds one id; returns the newly completed text.</summary>
    string Append(int id);
}
