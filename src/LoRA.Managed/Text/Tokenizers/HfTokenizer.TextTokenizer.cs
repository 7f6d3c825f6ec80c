namespace LoRA.Managed.Text.Tokenizers;

/// <summary>The Hugging Face tokenizer as the language-model recipes' <see cref="ITextTokenizer"/>.</summary>
public sealed partial class HfTokenizer : ITextTokenizer
{
    /// <inheritdoc />
    ITextStreamDecoder ITextTokenizer.CreateStreamDecoder(bool skipSpecialTokens) =>
        new StreamAdapter(CreateStreamingDecoder(skipSpecialTokens));

    private sealed class StreamAdapter(StreamingDecoder decoder) : ITextStreamDecoder
    {
        public string Append(int id) => decoder.Append(id);
    }
}
