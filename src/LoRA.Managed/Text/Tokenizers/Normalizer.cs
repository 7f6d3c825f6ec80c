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

/// <summary>
/// <c>NFC</c>, <c>NFD</c>, <c>NFKC</c>, <c>NFKD</c> (Qwen2 uses NFC) as HF runs them, with Unicode 9.0 data: a
/// character assigned later (<see cref="UnicodeAfter9"/>) is, to HF, an unassigned starter that nothing composes with,
/// so it is kept as it is and the text on either side is normalized on its own (normalization stability makes .NET's
/// result for the older characters the same as Unicode 9.0's).
/// </summary>
internal sealed class UnicodeNormalizer(NormalizationForm form) : Normalizer
{
    public override string Normalize(string text)
    {
        int firstNew = FirstNewCharacter(text, 0);
        if (firstNew < 0) return text.IsNormalized(form) ? text : text.Normalize(form);
        var sb = new StringBuilder(text.Length);
        int start = 0;
        while (firstNew >= 0)
        {
            sb.Append(text.AsSpan(start, firstNew - start).ToString().Normalize(form));
            int width = char.IsHighSurrogate(text[firstNew]) ? 2 : 1;
            sb.Append(text, firstNew, width);
            start = firstNew + width;
            firstNew = FirstNewCharacter(text, start);
        }
        sb.Append(text.AsSpan(start).ToString().Normalize(form));
        return sb.ToString();
    }

    private static int FirstNewCharacter(string text, int from)
    {
        for (int i = from; i < text.Length; i++)
        {
            if (text[i] < UnicodeAfter9.First) continue;
            int cp = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])
                ? char.ConvertToUtf32(text[i], text[i + 1]) : text[i];
            if (UnicodeAfter9.Contains(cp)) return i;
            if (cp > char.MaxValue) i++;
        }
        return -1;
    }
}
