using System.Text;

namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// A BPE model as Hugging Face <c>tokenizers</c>' <c>models::bpe::BPE</c> runs it on one pre-token: every character
/// becomes its vocabulary id (else its UTF-8 bytes as <c>&lt;0xNN&gt;</c> tokens when <see cref="ByteFallback"/>
/// is set, else the unknown token, consecutive ones fused when <see cref="FuseUnknown"/> is set), then merges apply
/// in rank order (<see cref="BpeMerger"/>). With <see cref="IgnoreMerges"/> a word that is itself in the vocabulary
/// is emitted whole (Llama 3). Results are cached per word, as HF does.
/// </summary>
internal sealed class BpeModel
{
    private const int MaxCachedWordLength = 256;
    private const int MaxCacheEntries = 200_000;
    private const char Metaspace = '\u2581';

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabBySpan;
    private readonly int[] _bmpIds;            // id of each one-character token, -1 when absent: the hot first lookup
    private readonly int[] _byteFallbackIds;   // id of <0xNN> for each byte, -1 when absent
    private readonly Dictionary<string, int[]> _cache = new();
    private readonly Dictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _cacheBySpan;
    private readonly bool _splitAtMetaspace;

    public BpeModel(Dictionary<string, int> vocab, BpeMerges merges, int unknownId, bool fuseUnknown, bool byteFallback,
        bool ignoreMerges,
        bool mergesCrossMetaspace = true)
    {
        // When no merge yields a token with "x▁" inside (x not ▁), no merge can join across such a boundary, and every
        // character there is known (▁ is in the vocabulary), so BPE on the pieces between them gives the same ids as on
        // the whole word. SentencePiece vocabularies (Llama 2) are like that; the split lets a legacy Llama 2 text,
        // which reaches the model as one word, use the word cache instead of one merge heap over the whole text.
        _splitAtMetaspace = !mergesCrossMetaspace && !ignoreMerges && vocab.ContainsKey(Metaspace.ToString());
        _vocab = vocab;
        _vocabBySpan = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _cacheBySpan = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
        Merges = merges;
        UnknownId = unknownId;
        FuseUnknown = fuseUnknown;
        ByteFallback = byteFallback;
        IgnoreMerges = ignoreMerges;
        _bmpIds = new int[char.MaxValue + 1];
        System.Array.Fill(_bmpIds, -1);
        IdToToken = new Dictionary<int, string>(vocab.Count);
        foreach (var (token, id) in vocab)
        {
            if (token.Length == 1) _bmpIds[token[0]] = id;
            IdToToken.TryAdd(id, token);
        }
        _byteFallbackIds = new int[256];
        for (int b = 0; b < 256; b++) _byteFallbackIds[b] = vocab.TryGetValue(ByteToken(b), out int id) ? id : -1;
    }

    /// <summary>This model with the split at ▁ boundaries forced off (or on where it is safe): the twin the tests
    /// compare.</summary>
    internal BpeModel WithMetaspaceSplit(bool split) =>
        new(_vocab, Merges, UnknownId, FuseUnknown, ByteFallback, IgnoreMerges, mergesCrossMetaspace: !split);

    /// <summary>True when words are cut before each ▁ that follows another character (see the constructor).</summary>
    internal bool SplitsAtMetaspace => _splitAtMetaspace;

    /// <summary>The model's tokens by id (ids need not be dense; of two tokens with one id, the first is
    /// kept).</summary>
    public Dictionary<int, string> IdToToken { get; }

    public BpeMerges Merges { get; }

    /// <summary>Id of the unknown token, -1 when the model has none (unknown characters are then dropped, as in
    /// HF).</summary>
    public int UnknownId { get; }

    public bool FuseUnknown { get; }

    public bool ByteFallback { get; }

    public bool IgnoreMerges { get; }

    /// <summary>Number of tokens in the vocabulary.</summary>
    public int VocabularyCount => _vocab.Count;

    public bool TryGetId(ReadOnlySpan<char> token, out int id) => _vocabBySpan.TryGetValue(token, out id);

    /// <summary>The byte-fallback token of <paramref name="b"/>: <c>&lt;0x0A&gt;</c> (Rust's
    /// <c>format!("&lt;{b:#04X}&gt;")</c>).</summary>
    public static string ByteToken(int b) => $"<0x{b:X2}>";

    /// <summary>Tokenizes one pre-token and appends its ids to <paramref name="output"/>.</summary>
    public void Tokenize(ReadOnlySpan<char> word, BpeMerger merger, List<int> output)
    {
        if (!_splitAtMetaspace) { TokenizeWord(word, merger, output); return; }
        int start = 0;
        for (int i = 1; i < word.Length; i++)
            if (word[i] == Metaspace && word[i - 1] != Metaspace)
            {
                TokenizeWord(word[start..i], merger, output);
                start = i;
            }
        TokenizeWord(word[start..], merger, output);
    }

    /// <summary>True when a merge's result holds a character other than ▁ followed by ▁ (see the
    /// constructor).</summary>
    public static bool CrossesMetaspace(string merged)
    {
        if (merged.Length < 2) return false;
        for (int i = merged.IndexOf(Metaspace, 1); i > 0; i = i + 1 < merged.Length
            ? merged.IndexOf(Metaspace, i + 1) : -1)
            if (merged[i - 1] != Metaspace) return true;
        return false;
    }

    private void TokenizeWord(ReadOnlySpan<char> word, BpeMerger merger, List<int> output)
    {
        if (word.IsEmpty) return;
        if (word.Length <= MaxCachedWordLength)
        {
            lock (_cache)
                if (_cacheBySpan.TryGetValue(word, out int[]? hit)) { output.AddRange(hit); return; }
        }
        int start = output.Count;
        if (IgnoreMerges && _vocabBySpan.TryGetValue(word, out int whole)) output.Add(whole);
        else
        {
            merger.Reset();
            AddSymbols(word, merger);
            merger.MergeInto(Merges, output);
        }
        if (word.Length <= MaxCachedWordLength)
        {
            int[] ids = output.GetRange(start, output.Count - start).ToArray();
            lock (_cache)
            {
                if (_cache.Count >= MaxCacheEntries) _cache.Clear();
                _cacheBySpan.TryAdd(word, ids);
            }
        }
    }

    // HF's BPE::merge_word before the merges: one symbol per character, the unknown-token bookkeeping included
    // (note that byte-fallback tokens are added before a pending unknown token is flushed, exactly as HF does).
    private void AddSymbols(ReadOnlySpan<char> word, BpeMerger merger)
    {
        bool pendingUnknown = false;     // an unknown token (maybe fused from several characters) not yet added
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < word.Length;)
        {
            int width = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1])
                ? 2 : 1;
            ReadOnlySpan<char> c = word.Slice(i, width);
            i += width;
            int id = width == 1 ? _bmpIds[c[0]] : (_vocabBySpan.TryGetValue(c, out int pairId) ? pairId : -1);
            if (id >= 0)
            {
                if (pendingUnknown) { merger.Add(UnknownId); pendingUnknown = false; }
                merger.Add(id);
                continue;
            }
            if (ByteFallback && TryAddBytes(c, merger, utf8)) continue;
            if (UnknownId < 0) continue;
            if (pendingUnknown && !FuseUnknown) merger.Add(UnknownId);
            pendingUnknown = true;
        }
        if (pendingUnknown) merger.Add(UnknownId);
    }

    private bool TryAddBytes(ReadOnlySpan<char> c, BpeMerger merger, Span<byte> utf8)
    {
        // A lone surrogate cannot come from valid text; Rust strings cannot hold one, so encode it as U+FFFD.
        int n = Encoding.UTF8.GetBytes(c, utf8);
        for (int k = 0; k < n; k++) if (_byteFallbackIds[utf8[k]] < 0) return false;
        for (int k = 0; k < n; k++) merger.Add(_byteFallbackIds[utf8[k]]);
        return true;
    }
}
