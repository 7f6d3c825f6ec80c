using System.Text;

namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// A Hugging Face <c>tokenizers</c> normalizer: rewrites one piece of text (the text between added tokens)
/// before pre-tokenization. Only the kinds real BPE tokenizers use are here; the reader refuses the others.
/// </summary>
internal abstract class Normalizer
{
    public abstract string Normalize(string text);
}

/// <summary><c>Sequence</c>: each normalizer in turn.</summary>
internal sealed class SequenceNormalizer(IReadOnlyList<Normalizer> normalizers) : Normalizer
{
    public override string Normalize(string text)
    {
        foreach (var n in normalizers) text = n.Normalize(text);
        return text;
    }
}

/// <summary><c>Prepend</c>: puts a string before non-empty text (Llama 2's <c>▁</c>, on every piece).</summary>
internal sealed class PrependNormalizer(string prefix) : Normalizer
{
    public override string Normalize(string text) => text.Length == 0 ? text : prefix + text;
}

/// <summary><c>Replace</c> with a <c>String</c> pattern: every occurrence, left to right.</summary>
internal sealed class ReplaceNormalizer(string pattern, string content) : Normalizer
{
    public override string Normalize(string text) => text.Replace(pattern, content, StringComparison.Ordinal);
}

/// <summary><c>NFC</c>, <c>NFD</c>, <c>NFKC</c>, <c>NFKD</c>: Unicode normalization (Qwen2 uses NFC).</summary>
internal sealed class UnicodeNormalizer(NormalizationForm form) : Normalizer
{
    public override string Normalize(string text) => text.IsNormalized(form) ? text : text.Normalize(form);
}
