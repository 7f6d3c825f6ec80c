using System.Runtime.InteropServices;
using System.Text;
using LoRA.Managed.IO;

namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// A Hugging Face BPE tokenizer read from its files, giving the ids that <c>tokenizer(text).input_ids</c> gives
/// on the Hub: byte-level BPE (GPT-2, Llama 3, Qwen2, SmolLM2) and SentencePiece-style BPE with byte fallback
/// (Llama 2, TinyLlama, Mistral). Encoding runs HF <c>tokenizers</c>' pipeline: added tokens are split out, each
/// remaining piece is normalized, pre-tokenized into words and each word BPE-encoded, then the post-processor's
/// special tokens are added. Instances are immutable apart from a word cache and safe to share between threads.
/// </summary>
public sealed partial class HfTokenizer
{
    private readonly TokenizerDefinition _definition;
    private readonly AddedTokenMatcher _rawTokens;
    private readonly AddedTokenMatcher _normalizedTokens;
    private readonly Dictionary<int, AddedToken> _addedById = new();
    private readonly Dictionary<string, AddedToken> _addedByContent = new(StringComparer.Ordinal);
    private readonly HashSet<string> _specialContents = new(StringComparer.Ordinal);
    private readonly SpecialTokenTemplate _template;

    private HfTokenizer(TokenizerDefinition definition, SpecialTokenTemplate template, string? bos, string? eos,
        string? pad)
    {
        _definition = definition;
        _template = template;
        foreach (var t in definition.AddedTokens)
        {
            _addedById[t.Id] = t;
            _addedByContent[t.Content] = t;
            if (t.Special) _specialContents.Add(t.Content);
        }
        _rawTokens = new AddedTokenMatcher(definition.AddedTokens.Where(t => !t.Normalized));
        _normalizedTokens = new AddedTokenMatcher(definition.AddedTokens.Where(t => t.Normalized));
        BosTokenId = bos is null ? null : TokenToId(bos);
        EosTokenId = eos is null ? null : TokenToId(eos);
        PadTokenId = pad is null ? null : TokenToId(pad);
        var distinct = new HashSet<string>(StringComparer.Ordinal);
        foreach (var token in definition.Model.IdToToken.Values) distinct.Add(token);
        foreach (var t in definition.AddedTokens) distinct.Add(t.Content);
        VocabSize = distinct.Count;
    }

    /// <summary>What the files describe (for tests).</summary>
    internal TokenizerDefinition Definition => _definition;

    /// <summary>
    /// Distinct tokens in the model's vocabulary and the added tokens together (HF's
    /// <c>get_vocab_size(with_added_tokens=True)</c>, transformers' <c>len(tokenizer)</c>).
    /// </summary>
    public int VocabSize { get; }

    /// <summary>Id of the beginning-of-sequence token named by the configuration, if any.</summary>
    public int? BosTokenId { get; }

    /// <summary>Id of the end-of-sequence token named by the configuration, if any.</summary>
    public int? EosTokenId { get; }

    /// <summary>Id of the padding token named by the configuration, if any.</summary>
    public int? PadTokenId { get; }

    /// <summary>The token with id <paramref name="id"/> (an added token first, then the model's), or null.</summary>
    public string? TokenToString(int id) =>
        _addedById.TryGetValue(id, out var added) ? added.Content : _definition.Model.IdToToken.GetValueOrDefault(id);

    /// <summary>The id of <paramref name="token"/> (an added token first, then the model's), or null.</summary>
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        if (_addedByContent.TryGetValue(token, out var added)) return added.Id;
        return _definition.Model.TryGetId(token, out int id) ? id : null;
    }

    /// <summary>
    /// The token ids of <paramref name="text"/>, with the post-processor's special tokens (BOS for Llama) when
    /// <paramref name="addSpecialTokens"/> is true. Lone UTF-16 surrogates, which no UTF-8 text can hold, are read
    /// as U+FFFD.
    /// </summary>
    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = WellFormed(text);
        var ids = new List<int>(text.Length / 3 + 4);
        if (addSpecialTokens) ids.AddRange(_template.Prefix);
        var scratch = new EncodeScratch();
        var pieces = new List<(int Start, int End, int Id)>();
        if (_rawTokens.IsEmpty) { if (text.Length > 0) pieces.Add((0, text.Length, -1)); }
        else _rawTokens.Split(text, pieces);
        var inner = new List<(int Start, int End, int Id)>();
        foreach (var (start, end, id) in pieces)
        {
            if (id >= 0) { ids.Add(id); continue; }
            string piece = text[start..end];
            string normalized = _definition.Normalizer?.Normalize(piece) ?? piece;
            inner.Clear();
            if (_normalizedTokens.IsEmpty) { if (normalized.Length > 0) inner.Add((0, normalized.Length, -1)); }
            else _normalizedTokens.Split(normalized, inner);
            foreach (var (s, e, innerId) in inner)
            {
                if (innerId >= 0) ids.Add(innerId);
                else EncodePiece(new TextPiece(normalized, s, e - s, start == 0 && s == 0), ids, scratch);
            }
        }
        if (addSpecialTokens) ids.AddRange(_template.Suffix);
        return [.. ids];
    }

    private void EncodePiece(TextPiece piece, List<int> ids, EncodeScratch scratch)
    {
        var words = scratch.Words;
        words.Clear();
        if (_definition.PreTokenizer is { } pre) pre.Split(piece, words);
        else words.Add(piece);
        foreach (var word in words)
        {
            if (!_definition.ByteLevel) { _definition.Model.Tokenize(word.Span, scratch.Merger, ids); continue; }
            _definition.Model.Tokenize(scratch.ToByteLevel(word.Span), scratch.Merger, ids);
        }
    }

    /// <summary>
    /// The text of <paramref name="ids"/> as HF <c>tokenizers</c>' <c>decode</c> gives it (no
    /// <c>clean_up_tokenization_spaces</c>): each id's token, special ones left out when
    /// <paramref name="skipSpecialTokens"/>, run through the decoder. Ids that are no token are skipped, as HF does.
    /// </summary>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
    {
        var tokens = new List<string>(ids.Length);
        foreach (int id in ids)
        {
            if (TokenToString(id) is not { } token) continue;
            if (skipSpecialTokens && _specialContents.Contains(token)) continue;
            tokens.Add(token);
        }
        return _definition.Decoder is { } decoder ? string.Concat(decoder.DecodeChain(tokens))
            : string.Join(' ', tokens);
    }

    /// <summary>A decoder that turns ids arriving one at a time into text, emitting only complete characters.</summary>
    public StreamingDecoder CreateStreamingDecoder(bool skipSpecialTokens = true) => new(this, skipSpecialTokens);

    private static string WellFormed(string text)
    {
        if (text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') < 0) return text;
        var sb = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                sb.Append(c).Append(text[++i]);
            else
                sb.Append(char.IsSurrogate(c) ? '\uFFFD' : c);
        }
        return sb.ToString();
    }

    /// <summary>Per-call buffers, so that one tokenizer can encode on several threads at once.</summary>
    private sealed class EncodeScratch
    {
        public readonly List<TextPiece> Words = new();
        public readonly BpeMerger Merger = new();
        private byte[] _bytes = new byte[256];
        private char[] _chars = new char[256];

        /// <summary>The word's UTF-8 bytes as GPT-2 alphabet characters.</summary>
        public ReadOnlySpan<char> ToByteLevel(ReadOnlySpan<char> word)
        {
            int max = Encoding.UTF8.GetMaxByteCount(word.Length);
            if (_bytes.Length < max) { _bytes = new byte[max]; _chars = new char[max]; }
            int n = Encoding.UTF8.GetBytes(word, _bytes);
            for (int i = 0; i < n; i++) _chars[i] = ByteLevelAlphabet.ByteToChar[_bytes[i]];
            return _chars.AsSpan(0, n);
        }
    }
}
