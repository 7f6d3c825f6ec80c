using System.Text;

namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// A Hugging Face <c>tokenizers</c> pre-tokenizer: splits a piece into the words the model tokenizes one by one
/// (and may rewrite them, as <c>Metaspace</c> does). Empty words are dropped, as <c>PreTokenizedString::split</c> does.
/// </summary>
internal abstract class PreTokenizer
{
    public abstract void Split(TextPiece piece, List<TextPiece> output);

    /// <summary>Adds the non-empty segments of <paramref name="piece"/> given by <paramref name="segments"/>.</summary>
    protected static void AddSegments(TextPiece piece, List<(int Start, int End)> segments, List<TextPiece> output)
    {
        foreach (var (start, end) in segments)
            if (end > start) output.Add(piece.Slice(start, end));
    }
}

/// <summary><c>Sequence</c>: each pre-tokenizer splits every word the previous one produced.</summary>
internal sealed class SequencePreTokenizer(IReadOnlyList<PreTokenizer> steps) : PreTokenizer
{
    public override void Split(TextPiece piece, List<TextPiece> output)
    {
        var current = new List<TextPiece> { piece };
        var next = new List<TextPiece>();
        foreach (var step in steps)
        {
            next.Clear();
            foreach (var p in current) step.Split(p, next);
            (current, next) = (next, current);
        }
        output.AddRange(current);
    }
}

/// <summary>
/// <c>ByteLevel</c> (GPT-2): optionally a space before a piece that does not start with one, then the GPT-2 regex
/// when <c>use_regex</c> is set. The mapping of bytes to the visible alphabet happens when the words reach the model
/// (<see cref="HfTokenizer"/>), which is why the reader accepts ByteLevel only as the last pre-tokenizer.
/// </summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : PreTokenizer
{
    private readonly CodePointRegex? _regex = useRegex ? CodePointRegex.Create(CodePointRegex.Gpt2Pattern) : null;

    public bool AddPrefixSpace => addPrefixSpace;

    /// <summary>The same pre-tokenizer with <c>add_prefix_space</c> set as given.</summary>
    public ByteLevelPreTokenizer WithPrefixSpace(bool add) => new(add, useRegex);

    public override void Split(TextPiece piece, List<TextPiece> output)
    {
        if (addPrefixSpace && piece.Span[0] != ' ')
            piece = TextPiece.Whole(" " + piece.Span.ToString(), piece.AtTextStart);
        if (_regex is null) { output.Add(piece); return; }
        var segments = new List<(int, int)>();
        SplitBehavior.Apply(Matches(_regex, piece), SplitBehavior.Kind.Isolated, segments);
        AddSegments(piece, segments, output);
    }

    internal static List<(int Start, int End, bool IsMatch)> Matches(CodePointRegex regex, TextPiece piece)
    {
        var found = new List<(int Start, int End)>();
        regex.Matches(piece.Span, found);
        return SplitBehavior.WithGaps(found, piece.Length);
    }
}

/// <summary>
/// <c>Metaspace</c> (SentencePiece): spaces become <c>▁</c>, a <c>▁</c> is put before a word that lacks one
/// (always, only at the start of the text, or never), then, with <c>split</c>, the text is cut before each <c>▁</c>.
/// </summary>
internal sealed class MetaspacePreTokenizer(char replacement, MetaspacePreTokenizer.Prepend prepend, bool split)
    : PreTokenizer
{
    /// <summary><c>prepend_scheme</c>.</summary>
    public enum Prepend { Always, First, Never }

    public override void Split(TextPiece piece, List<TextPiece> output)
    {
        string text = piece.Span.ToString().Replace(' ', replacement);
        bool add = text.Length > 0 && text[0] != replacement
            && (prepend == Prepend.Always || prepend == Prepend.First && piece.AtTextStart);
        if (add) text = replacement + text;
        var whole = TextPiece.Whole(text, piece.AtTextStart);
        if (!split) { output.Add(whole); return; }
        var segments = new List<(int, int)>();
        SplitBehavior.Apply(SplitBehavior.CharMatches(text, r => r.Value == replacement),
            SplitBehavior.Kind.MergedWithNext, segments);
        AddSegments(whole, segments, output);
    }
}

/// <summary>
/// <c>Digits</c> (Rust's <c>char::is_numeric</c>: categories Nd, Nl, No, by code point): each digit alone
/// (<c>individual_digits</c>) or runs of digits, apart from the rest.
/// </summary>
internal sealed class DigitsPreTokenizer(bool individualDigits) : PreTokenizer
{
    public override void Split(TextPiece piece, List<TextPiece> output)
    {
        var segments = new List<(int, int)>();
        var kind = individualDigits ? SplitBehavior.Kind.Isolated : SplitBehavior.Kind.Contiguous;
        SplitBehavior.Apply(SplitBehavior.CharMatches(piece.Span, Rune.IsNumber), kind, segments);
        AddSegments(piece, segments, output);
    }
}

/// <summary><c>Split</c> with a regex or string pattern, a behaviour and <c>invert</c>.</summary>
internal sealed class SplitPreTokenizer(CodePointRegex regex, SplitBehavior.Kind behavior, bool invert) : PreTokenizer
{
    public override void Split(TextPiece piece, List<TextPiece> output)
    {
        var matches = ByteLevelPreTokenizer.Matches(regex, piece);
        if (invert)
            for (int i = 0; i < matches.Count; i++) matches[i] = matches[i] with { IsMatch = !matches[i].IsMatch };
        var segments = new List<(int, int)>();
        SplitBehavior.Apply(matches, behavior, segments);
        AddSegments(piece, segments, output);
    }
}
