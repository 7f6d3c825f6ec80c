using System.Globalization;
using System.Text;

namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// Finds added tokens in text as Hugging Face <c>tokenizers</c>' <c>AddedVocabulary::split_with_indices</c> does:
/// leftmost-longest matching (Aho-Corasick's <c>LeftmostLongest</c>; here a per-first-character list of contents,
/// longest first), a <c>single_word</c> match inside a word skipped, <c>lstrip</c>/<c>rstrip</c> widening the match
/// over neighbouring white space. The text between matches is returned as gaps.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private readonly Dictionary<char, AddedToken[]> _byFirstChar;

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
    {
        _byFirstChar = tokens.Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
    }

    public bool IsEmpty => _byFirstChar.Count == 0;

    /// <summary>Appends (start, end, token id or -1 for a gap) covering <paramref name="text"/>; empty gaps are left
    /// out.</summary>
    public void Split(string text, List<(int Start, int End, int Id)> output)
    {
        int gapStart = 0;
        for (int i = 0; i < text.Length;)
        {
            AddedToken? found = null;
            if (_byFirstChar.TryGetValue(text[i], out var candidates))
                foreach (var t in candidates)
                    if (text.AsSpan(i).StartsWith(t.Content, StringComparison.Ordinal)) { found = t; break; }
            if (found is null) { i++; continue; }
            int start = i, stop = i + found.Content.Length;
            i = stop;   // the automaton resumes after the match, whether or not it is used
            if (found.SingleWord && (EndsWithWord(text.AsSpan(0, start)) || StartsWithWord(text.AsSpan(stop))))
                continue;
            if (found.LStrip)
            {
                int s = start;
                while (s > 0 && char.IsWhiteSpace(text[s - 1])) s--;
                start = Math.Max(s, gapStart);
            }
            if (found.RStrip)
                while (stop < text.Length && char.IsWhiteSpace(text[stop])) stop++;
            if (gapStart < start) output.Add((gapStart, start, -1));
            output.Add((start, stop, found.Id));
            gapStart = stop;
            i = Math.Max(i, stop);
        }
        if (gapStart < text.Length) output.Add((gapStart, text.Length, -1));
    }

    // HF tests the character before / after the match with the Rust regex crate's \w (UTS #18 word characters).
    private static bool EndsWithWord(ReadOnlySpan<char> before) =>
        !before.IsEmpty && Rune.DecodeLastFromUtf16(before, out Rune r, out _) == System.Buffers.OperationStatus.Done
            && IsWordRune(r);

    private static bool StartsWithWord(ReadOnlySpan<char> after) =>
        !after.IsEmpty && Rune.DecodeFromUtf16(after, out Rune r, out _) == System.Buffers.OperationStatus.Done
            && IsWordRune(r);

    /// <summary>
    /// Rust regex's <c>\w</c>: Alphabetic (letters, Nl, Other_Alphabetic), marks, decimal digits, connector punctuation
    /// and the joiners U+200C/U+200D. Other_Alphabetic outside letters and marks is, in practice, the circled and
    /// squared Latin letters (Ⓐ, 🄰), listed here.
    /// </summary>
    internal static bool IsWordRune(Rune r) => Rune.GetUnicodeCategory(r) switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter or UnicodeCategory.LetterNumber
            or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.ConnectorPunctuation => true,
        _ => r.Value is 0x200C or 0x200D or >= 0x24B6 and <= 0x24E9 or >= 0x1F130 and <= 0x1F149
            or >= 0x1F150 and <= 0x1F169 or >= 0x1F170 and <= 0x1F189,
    };
}
