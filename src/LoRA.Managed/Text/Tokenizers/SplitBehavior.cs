using System.Text;

namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// How a pattern's matches cut a piece, as <c>NormalizedString::split</c> in Hugging Face <c>tokenizers</c> does:
/// the piece is first covered by alternating (match, gap) segments, then the <see cref="Kind"/> decides what
/// becomes a word. The folds mirror HF's code line for line so that edge cases (a match at the start, runs of
/// matches) come out the same.
/// </summary>
internal static class SplitBehavior
{
    /// <summary><c>SplitDelimiterBehavior</c>.</summary>
    public enum Kind { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

    /// <summary>Matches (sorted, non-overlapping) plus the gaps between them, covering [0,
    /// <paramref name="length"/>).</summary>
    public static List<(int Start, int End, bool IsMatch)> WithGaps(List<(int Start, int End)> matches, int length)
    {
        var all = new List<(int, int, bool)>(matches.Count * 2 + 1);
        int previous = 0;
        foreach (var (start, end) in matches)
        {
            if (previous != start) all.Add((previous, start, false));
            all.Add((start, end, true));
            previous = end;
        }
        if (previous != length) all.Add((previous, length, false));
        return all;
    }

    /// <summary>Every code point for which <paramref name="isMatch"/> holds is a match of its own (HF's char-predicate
    /// pattern).</summary>
    public static List<(int Start, int End, bool IsMatch)> CharMatches(ReadOnlySpan<char> text,
        Func<Rune, bool> isMatch)
    {
        var all = new List<(int, int, bool)>();
        int gapStart = 0;
        for (int i = 0; i < text.Length;)
        {
            Rune.DecodeFromUtf16(text[i..], out Rune rune, out int used);
            if (isMatch(rune))
            {
                if (gapStart < i) all.Add((gapStart, i, false));
                all.Add((i, i + used, true));
                gapStart = i + used;
            }
            i += used;
        }
        if (gapStart < text.Length) all.Add((gapStart, text.Length, false));
        return all;
    }

    /// <summary>Appends the segments <paramref name="kind"/> keeps (possibly empty; callers drop empty ones).</summary>
    public static void Apply(List<(int Start, int End, bool IsMatch)> matches, Kind kind,
        List<(int Start, int End)> output)
    {
        switch (kind)
        {
            case Kind.Isolated:
                foreach (var (s, e, _) in matches) output.Add((s, e));
                break;
            case Kind.Removed:
                foreach (var (s, e, m) in matches) if (!m) output.Add((s, e));
                break;
            case Kind.MergedWithPrevious:
            {
                bool previousMatch = false;
                foreach (var (s, e, m) in matches)
                {
                    if (m && !previousMatch && output.Count > 0) output[^1] = (output[^1].Start, e);
                    else output.Add((s, e));
                    previousMatch = m;
                }
                break;
            }
            case Kind.MergedWithNext:
            {
                // HF folds from the right: a match joins the segment after it.
                int first = output.Count;
                bool previousMatch = false;
                for (int i = matches.Count - 1; i >= 0; i--)
                {
                    var (s, e, m) = matches[i];
                    if (m && !previousMatch && output.Count > first) output[^1] = (s, output[^1].End);
                    else output.Add((s, e));
                    previousMatch = m;
                }
                output.Reverse(first, output.Count - first);
                break;
            }
            case Kind.Contiguous:
            {
                bool previousMatch = false;
                int first = output.Count;
                foreach (var (s, e, m) in matches)
                {
                    if (m == previousMatch && output.Count > first) output[^1] = (output[^1].Start, e);
                    else output.Add((s, e));
                    previousMatch = m;
                }
                break;
            }
        }
    }
}
