namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// Everything a tokenizer file describes, read and checked: the model, the added tokens, the pipeline components
/// and the special tokens the post-processor adds. <see cref="HfTokenizer"/> runs it.
/// </summary>
/// <param name="Model">The BPE model.</param>
/// <param name="AddedTokens">Tokens matched before the model, in file order.</param>
/// <param name="Normalizer">Applied to each piece between added tokens, or null.</param>
/// <param name="PreTokenizer">Splits pieces into words, or null (the piece is one word).</param>
/// <param name="ByteLevel">The words reach the model as GPT-2 byte characters.</param>
/// <param name="Decoder">Turns tokens back into text, or null (tokens joined with spaces, as HF does without
/// one).</param>
/// <param name="Template">Special tokens added when asked.</param>
internal sealed record TokenizerDefinition(BpeModel Model, IReadOnlyList<AddedToken> AddedTokens,
    Normalizer? Normalizer,
    PreTokenizer? PreTokenizer, bool ByteLevel, TokenDecoder? Decoder, SpecialTokenTemplate Template);
