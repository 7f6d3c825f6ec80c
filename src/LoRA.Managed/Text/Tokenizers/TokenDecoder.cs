using System.Text;

namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// A Hugging Face <c>tokenizers</c> decoder: <c>decode_chain</c> turns the list of token strings into another list
/// (each kind below says how); <see cref="HfTokenizer.Decode"/> concatenates what the last one leaves.
/// </summary>
internal abstract class TokenDecoder
{
    public abstract List<string> DecodeChain(List<string> tokens);
}

/// <summary><c>Sequence</c>: each decoder's chain feeds the next.</summary>
internal sealed class SequenceDecoder(IReadOnlyList<TokenDecoder> decoders) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        foreach (var d in decoders) tokens = d.DecodeChain(tokens);
        return tokens;
    }
}

/// <summary>
/// <c>ByteLevel</c>: every token's characters back to bytes through <see cref="ByteLevelAlphabet"/> (a token with a
/// character outside the alphabet contributes its own UTF-8 bytes instead), all bytes joined, then decoded as UTF-8
/// with each invalid sequence replaced by U+FFFD (Rust's <c>from_utf8_lossy</c>, which .NET's decoder matches).
/// </summary>
internal sealed class ByteLevelDecoder : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (string token in tokens)
        {
            bool mapped = true;
            foreach (char c in token) if (ByteLevelAlphabet.ByteOf(c) < 0) { mapped = false; break; }
            if (mapped) foreach (char c in token) bytes.Add((byte)ByteLevelAlphabet.ByteOf(c));
            else bytes.AddRange(Encoding.UTF8.GetBytes(token));
        }
        return [Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes))];
    }
}

/// <summary><c>Replace</c> with a <c>String</c> pattern, in each token.</summary>
internal sealed class ReplaceDecoder(string pattern, string content) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens) =>
        tokens.ConvertAll(t => t.Replace(pattern, content, StringComparison.Ordinal));
}

/// <summary>
/// <c>ByteFallback</c>: runs of <c>&lt;0xNN&gt;</c> tokens become the text of their bytes, or one U+FFFD per byte
/// when the run is not valid UTF-8.
/// </summary>
internal sealed class ByteFallbackDecoder : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        var pending = new List<byte>();
        foreach (string token in tokens)
        {
            if (TryParseByte(token, out byte b)) { pending.Add(b); continue; }
            Flush(pending, result);
            result.Add(token);
        }
        Flush(pending, result);
        return result;
    }

    private static void Flush(List<byte> pending, List<string> result)
    {
        if (pending.Count == 0) return;
        byte[] bytes = pending.ToArray();
        if (System.Text.Unicode.Utf8.IsValid(bytes)) result.Add(Encoding.UTF8.GetString(bytes));
        else for (int i = 0; i < bytes.Length; i++) result.Add("\uFFFD");
        pending.Clear();
    }

    // HF: six bytes long, "<0x" ... ">", and the two characters between parse as hex (u8::from_str_radix).
    private static bool TryParseByte(string token, out byte value)
    {
        value = 0;
        return token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
            && byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out value);
    }
}

/// <summary><c>Fuse</c>: all tokens into one string.</summary>
internal sealed class FuseDecoder : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
}

/// <summary><c>Strip</c>: up to <c>start</c> leading and <c>stop</c> trailing <c>content</c> characters off each
/// token.</summary>
internal sealed class StripDecoder(char content, int start, int stop) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens) => tokens.ConvertAll(t =>
    {
        int from = 0, to = t.Length;
        while (from < start && from < t.Length && t[from] == content) from++;
        int cut = 0;
        while (cut < stop && to > from && t[to - 1] == content) { to--; cut++; }
        return t[from..to];
    });
}

/// <summary>
/// <c>Metaspace</c>: <c>▁</c> back to a space, except in the first token where, unless the prepend scheme is
/// <c>never</c>, every <c>▁</c> is dropped (HF's <c>decode_chain</c> does exactly that).
/// </summary>
internal sealed class MetaspaceDecoder(char replacement, bool prependsSpace) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
        {
            var sb = new StringBuilder(tokens[i].Length);
            foreach (char c in tokens[i])
            {
                if (c != replacement) sb.Append(c);
                else if (i != 0 || !prependsSpace) sb.Append(' ');
            }
            result.Add(sb.ToString());
        }
        return result;
    }
}
