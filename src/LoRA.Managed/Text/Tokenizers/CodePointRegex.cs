using System.Collections.Concurrent;
using System.Globalization;
using System.Text.RegularExpressions;

namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// A pre-tokenizer regex matched by code point, as Hugging Face <c>tokenizers</c> (Oniguruma on UTF-8) matches it.
/// .NET's <see cref="Regex"/> sees UTF-16 units, so a character outside the BMP would be two surrogates of
/// category Cs: <c>\p{L}+</c> would not match 𝐀 (U+1D400) and <c>\p{N}{1,3}</c> would count 𝟏 (U+1D7CF) twice.
/// Text holding surrogate pairs is therefore matched on a shadow copy with one character per code point, each
/// astral one replaced by a BMP character of the same Unicode general category, and the matches mapped back.
/// This is exact for patterns built from general categories, <c>\s</c> and literals below U+D800, which is what the
/// GPT-2, Llama 3 and Qwen2 patterns are.
/// </summary>
internal sealed class CodePointRegex
{
    private static readonly ConcurrentDictionary<string, Regex> Compiled = new(StringComparer.Ordinal);
    private static readonly char[] Representatives = BuildRepresentatives();

    private readonly Regex _regex;

    private CodePointRegex(Regex regex) => _regex = regex;

    /// <summary>The GPT-2 pattern that the <c>ByteLevel</c> pre-tokenizer uses when <c>use_regex</c> is true.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>Compiles <paramref name="pattern"/> (cached per pattern text).</summary>
    /// <exception cref="ArgumentException">.NET cannot parse the pattern.</exception>
    public static CodePointRegex Create(string pattern)
    {
        if (!Compiled.TryGetValue(pattern, out var regex))
        {
            regex = new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled);
            if (Compiled.Count < 256) Compiled.TryAdd(pattern, regex);
        }
        return new CodePointRegex(regex);
    }

    /// <summary>Appends the (start, end) of every match in <paramref name="text"/>, in UTF-16 indices of the
    /// text.</summary>
    public void Matches(ReadOnlySpan<char> text, List<(int Start, int End)> output)
    {
        if (text.IndexOfAnyInRange('\uD800', '\uDFFF') < 0)
        {
            foreach (var m in _regex.EnumerateMatches(text)) output.Add((m.Index, m.Index + m.Length));
            return;
        }
        var shadow = new char[text.Length];
        var map = new int[text.Length + 1];   // shadow index -> text index
        int n = 0;
        for (int i = 0; i < text.Length; n++)
        {
            map[n] = i;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                var category = CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]));
                shadow[n] = Representatives[(int)category];
                i += 2;
            }
            else shadow[n] = text[i++];
        }
        map[n] = text.Length;
        foreach (var m in _regex.EnumerateMatches(shadow.AsSpan(0, n)))
            output.Add((map[m.Index], map[m.Index + m.Length]));
    }

    // For each general category, the first non-ASCII, non-white-space BMP character of that category.
    private static char[] BuildRepresentatives()
    {
        var reps = new char[32];
        System.Array.Fill(reps, '\uFFFD');
        var found = new bool[32];
        for (int c = 0x80; c <= 0xFFFF; c++)
        {
            if (c is >= 0xD800 and <= 0xDFFF || char.IsWhiteSpace((char)c)) continue;
            int category = (int)CharUnicodeInfo.GetUnicodeCategory((char)c);
            if (found[category]) continue;
            found[category] = true;
            reps[category] = (char)c;
        }
        return reps;
    }
}
