namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// A token matched in the text before the model runs (an entry of <c>added_tokens</c> in tokenizer.json or of
/// <c>added_tokens_decoder</c> in tokenizer_config.json): special ones (<c>&lt;s&gt;</c>, <c>&lt;|endoftext|&gt;</c>)
/// and plain added words alike.
/// </summary>
/// <param name="Id">Its id.</param>
/// <param name="Content">Its text.</param>
/// <param name="Special">Skipped by decoding with <c>skipSpecialTokens</c>.</param>
/// <param name="LStrip">Swallows the white space before it.</param>
/// <param name="RStrip">Swallows the white space after it.</param>
/// <param name="SingleWord">Matches only where it is not inside a word.</param>
/// <param name="Normalized">Matched in the normalized text rather than the raw text.</param>
internal sealed record AddedToken(int Id, string Content, bool Special, bool LStrip, bool RStrip, bool SingleWord,
    bool Normalized);
