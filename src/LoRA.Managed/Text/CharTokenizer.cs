using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoRA.Managed.IO;

namespace LoRA.Managed.Text;

/// <summary>
/// A character-level tokenizer, as in Karpathy's char-rnn / nanoGPT's shakespeare_char: each distinct UTF-16
/// character of the corpus is one token, ids in ordinal order of the characters. With an unknown symbol
/// (<see cref="UnknownChar"/>, id 0) characters never seen map to it; without one, encoding them is an error.
/// Saved as JSON: <c>{"type": "char", "unk_id": 0, "vocab": ["\ufffd", "\n", " ", …]}</c> (vocab in id order).
/// </summary>
public sealed class CharTokenizer
{
    /// <summary>The symbol standing for unknown characters (U+FFFD, the Unicode replacement character).</summary>
    public const char UnknownChar = '\uFFFD';

    private readonly char[] _vocab;
    private readonly Dictionary<char, int> _ids;

    /// <summary>Creates a tokenizer with the given characters in id order; with <paramref name="hasUnknown"/>, the
    /// first must be <see cref="UnknownChar"/>.</summary>
    /// <exception cref="ArgumentException">A character repeats, the vocabulary is empty, or the unknown symbol is
    /// misplaced.</exception>
    public CharTokenizer(IEnumerable<char> vocabulary, bool hasUnknown)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        _vocab = vocabulary.ToArray();
        if (_vocab.Length == 0) throw new ArgumentException("CharTokenizer: the vocabulary is empty.");
        if (hasUnknown && _vocab[0] != UnknownChar)
            throw new ArgumentException("CharTokenizer: with an unknown symbol, id 0 must be U+FFFD, got " +
                $"U+{(int)_vocab[0]:X4}.");
        _ids = new Dictionary<char, int>(_vocab.Length);
        for (int i = 0; i < _vocab.Length; i++)
            if (!_ids.TryAdd(_vocab[i], i))
                throw new ArgumentException($"CharTokenizer: character U+{(int)_vocab[i]:X4} appears twice in the " +
                    $"vocabulary (ids {_ids[_vocab[i]]} and {i}).");
        UnknownId = hasUnknown ? 0 : null;
    }

    /// <summary>Builds the vocabulary from every character of <paramref name="corpora"/>, sorted by code
    /// unit.</summary>
    public static CharTokenizer FromCorpora(IEnumerable<string> corpora, bool addUnknown = true)
    {
        ArgumentNullException.ThrowIfNull(corpora);
        var set = new SortedSet<char>();
        foreach (string text in corpora) foreach (char ch in text) set.Add(ch);
        set.Remove(UnknownChar);
        return new CharTokenizer(addUnknown ? set.Prepend(UnknownChar) : set, addUnknown);
    }

    /// <summary>Builds the vocabulary from the characters of one corpus.</summary>
    public static CharTokenizer FromText(string text, bool addUnknown = true) =>
        FromCorpora(new[] { text }, addUnknown);

    /// <summary>Number of tokens (the model's VocabSize).</summary>
    public int VocabSize => _vocab.Length;

    /// <summary>The characters in id order.</summary>
    public IReadOnlyList<char> Vocabulary => _vocab;

    /// <summary>The id unknown characters map to (0), or null when unknown characters are an error.</summary>
    public int? UnknownId { get; }

    /// <summary>Token ids of <paramref name="text"/>.</summary>
    /// <exception cref="ArgumentException">A character is not in the vocabulary and there is no unknown symbol (names
    /// it and its index).</exception>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new int[text.Length];
        for (int i = 0; i < text.Length; i++)
        {
            if (_ids.TryGetValue(text[i], out int id)) ids[i] = id;
            else if (UnknownId is int unk) ids[i] = unk;
            else
                throw new ArgumentException($"CharTokenizer: character U+{(int)text[i]:X4} '{text[i]}' at index {i} " +
                    "is not in the vocabulary and there is no unknown symbol.");
        }
        return ids;
    }

    /// <summary>Characters of <paramref name="text"/> that would encode as the unknown symbol.</summary>
    public int CountUnknown(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int n = 0;
        foreach (char ch in text) if (!_ids.ContainsKey(ch)) n++;
        return n;
    }

    /// <summary>The text of token ids (the unknown id decodes to U+FFFD).</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public string Decode(ReadOnlySpan<int> ids)
    {
        var sb = new StringBuilder(ids.Length);
        for (int i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)_vocab.Length)
                throw new ArgumentOutOfRangeException(nameof(ids), ids[i],
                    $"CharTokenizer: id {ids[i]} at position {i} is outside 0..{_vocab.Length - 1}.");
            sb.Append(_vocab[ids[i]]);
        }
        return sb.ToString();
    }

    /// <summary>The JSON form (see the class summary).</summary>
    public string ToJson()
    {
        var vocab = new JsonArray();
        // the non-generic Add: Add<T> is not trim-safe
        foreach (char ch in _vocab) vocab.Add((JsonNode)ch.ToString());
        var root = new JsonObject { ["type"] = "char", ["unk_id"] = UnknownId, ["vocab"] = vocab };
        return JsonSerializer.Serialize(root, JsonNodeContext.Indented.JsonObject);
    }

    /// <summary>Reads the JSON form; <paramref name="source"/> names the file in error messages.</summary>
    /// <exception cref="FormatException">The JSON is malformed or a field is wrong (the message names the
    /// field).</exception>
    public static CharTokenizer FromJson(string json, string source = "tokenizer JSON")
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonNode? root;
        try { root = JsonNode.Parse(json); }
        catch (JsonException e) { throw new FormatException($"{source}: not valid JSON ({e.Message}).", e); }
        if (root is not JsonObject obj) throw new FormatException($"{source}: expected a JSON object.");
        if (obj["type"]?.GetValueKind() != JsonValueKind.String || (string?)obj["type"] != "char")
            throw new FormatException($"{source}: field 'type' must be \"char\".");
        if (obj["vocab"] is not JsonArray arr)
            throw new FormatException($"{source}: field 'vocab' must be an array of one-character strings.");
        var chars = new List<char>(arr.Count);
        for (int i = 0; i < arr.Count; i++)
        {
            string? s = arr[i]?.GetValueKind() == JsonValueKind.String ? (string?)arr[i] : null;
            if (s is null || s.Length != 1)
                throw new FormatException($"{source}: 'vocab'[{i}] must be a one-character string.");
            chars.Add(s[0]);
        }
        JsonNode? unk = obj["unk_id"];
        bool hasUnknown = unk is not null;
        if (hasUnknown && (unk!.GetValueKind() != JsonValueKind.Number || (int)unk != 0))
            throw new FormatException($"{source}: field 'unk_id' must be 0 or null.");
        try { return new CharTokenizer(chars, hasUnknown); }
        catch (ArgumentException e) { throw new FormatException($"{source}: {e.Message}", e); }
    }

    /// <summary>Writes the JSON form atomically (a temporary file in the same folder, flushed, then renamed over
    /// <paramref name="path"/>).</summary>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        AtomicFile.WriteAllBytes(Path.GetFullPath(path), Encoding.UTF8.GetBytes(ToJson()));
    }

    /// <summary>Reads a tokenizer saved by <see cref="Save"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="FormatException">The content is wrong (the message names the file and field).</exception>
    public static CharTokenizer Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return FromJson(File.ReadAllText(path), path);
    }
}
