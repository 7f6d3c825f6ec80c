using System.Runtime.InteropServices;

namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// Decodes ids arriving one at a time (generation) into text, as HF <c>tokenizers</c>' <c>DecodeStream</c> does:
/// the ids since the last emitted text are decoded with the previous token as context (so decoders that strip a
/// leading space or join bytes see what they would see in a full decode), and text is emitted only when it grew and
/// does not end in U+FFFD, i.e. when the byte-level or byte-fallback pieces of a character are all there.
/// </summary>
public sealed class StreamingDecoder
{
    private readonly HfTokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly List<int> _ids = new();
    private string _prefix = "";
    private int _prefixIndex;

    internal StreamingDecoder(HfTokenizer tokenizer, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>Adds one id and returns the text it completes (empty while a character is still incomplete).</summary>
    /// <exception cref="InvalidOperationException">The decoder rewrote text already emitted (HF's
    /// <c>InvalidPrefix</c>).</exception>
    public string Append(int id)
    {
        _ids.Add(id);
        string text = _tokenizer.Decode(CollectionsMarshal.AsSpan(_ids), _skipSpecialTokens);
        if (text.Length <= _prefix.Length || text.EndsWith('\uFFFD')) return "";
        if (!text.StartsWith(_prefix, StringComparison.Ordinal))
            throw new InvalidOperationException($"streaming decode: \"{text}\" does not continue the text already " +
                $"emitted, \"{_prefix}\".");
        string added = text[_prefix.Length..];
        int newPrefixIndex = _ids.Count - _prefixIndex;
        _ids.RemoveRange(0, _prefixIndex);
        _prefix = _tokenizer.Decode(CollectionsMarshal.AsSpan(_ids), _skipSpecialTokens);
        _prefixIndex = newPrefixIndex;
        return added;
    }
}
