using System.Text.Json;
using LoRA.Managed.IO;

namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// Reads a Hugging Face <c>tokenizer.json</c> (the format of <c>tokenizers</c>' <c>Tokenizer::save</c>) with a BPE
/// model. <c>truncation</c> and <c>padding</c> are ignored, as transformers turns both off for a plain
/// <c>tokenizer(text)</c> call.
/// </summary>
internal static class TokenizerJsonReader
{
    /// <summary>Nesting real files never approach; deeper input is refused before parsing.</summary>
    private const int MaxDepth = 64;

    /// <summary>Parses <paramref name="utf8"/>, naming <paramref name="file"/> in errors.</summary>
    /// <exception cref="InvalidDataFormatException">The file is not valid JSON or describes something
    /// unsupported.</exception>
    public static TokenizerDefinition Read(ReadOnlyMemory<byte> utf8, string file)
    {
        var json = new JsonFields(file);
        using var document = StrictJson.Parse(utf8, file, "json", MaxDepth);
        var root = json.Object(document.RootElement, "json");
        var model = BpeModelReader.FromJson(json, json.Required(root, "model", ""), "model");
        var added = AssignIds(AddedTokens(json, root), model);

        var components = new TokenizerComponentsReader(json);
        var normalizer = components.Normalizer(JsonFields.Member(root, "normalizer"), "normalizer");
        var (preTokenizer, byteLevel) = components.PreTokenizer(JsonFields.Member(root, "pre_tokenizer"),
            "pre_tokenizer");
        var decoder = components.Decoder(JsonFields.Member(root, "decoder"), "decoder");
        int? IdOf(string token) => added.LastOrDefault(t => t.Content == token)?.Id
            ?? (model.TryGetId(token, out int id) ? id : null);
        var template = components.PostProcessor(JsonFields.Member(root, "post_processor"), "post_processor", IdOf);
        return new TokenizerDefinition(model, added, normalizer, preTokenizer, byteLevel, decoder, template);
    }

    private static List<AddedToken> AddedTokens(JsonFields json, JsonElement root)
    {
        var list = new List<AddedToken>();
        if (JsonFields.Member(root, "added_tokens") is not { } array) return list;
        json.Array(array, "added_tokens");
        int i = 0;
        foreach (var item in array.EnumerateArray())
            list.Add(ReadAddedToken(json, item, $"added_tokens[{i++}]", id: null));
        return list;
    }

    /// <summary>
    /// The ids HF gives the added tokens when it loads the file (<c>AddedVocabulary::add_tokens</c> after sorting
    /// them by their written <c>id</c>, which is otherwise ignored): a token whose text is already a token keeps that
    /// id; any other takes the model's vocabulary size, or one past the largest added id once that reaches it. Real
    /// files were written by the same rule, so the written ids agree; a hand-edited file may not.
    /// </summary>
    private static List<AddedToken> AssignIds(List<AddedToken> declared, BpeModel model)
    {
        var byContent = new Dictionary<string, int>(StringComparer.Ordinal);
        var byId = new Dictionary<int, AddedToken>();
        var seen = new HashSet<AddedToken>();
        int vocabularySize = model.VocabularyCount;
        foreach (var token in declared.OrderBy(t => t.Id))
        {
            var key = token with { Id = 0 };
            if (!seen.Add(key)) continue;                 // the very same token twice is ignored
            int id;
            if (byContent.TryGetValue(token.Content, out int existing)) id = existing;
            else if (model.TryGetId(token.Content, out int inModel)) id = inModel;
            else
            {
                int max = byId.Count == 0 ? -1 : byId.Keys.Max();
                id = byId.Count == 0 ? vocabularySize : max >= vocabularySize || vocabularySize == 0 ? max + 1
                    : vocabularySize;
            }
            byContent[token.Content] = id;
            byId[id] = token with { Id = id };             // a later token with the same text replaces the options
        }
        return [.. byId.Values];
    }

    /// <summary>
    /// One added token object. <paramref name="id"/> is given when the object's key holds it (tokenizer_config.json's
    /// <c>added_tokens_decoder</c>); else the object's <c>id</c> member. <c>normalized</c> defaults to the opposite of
    /// <c>special</c>, as in HF's <c>AddedToken</c>.
    /// </summary>
    internal static AddedToken ReadAddedToken(JsonFields json, JsonElement item, string path, int? id)
    {
        json.Object(item, path);
        int tokenId = id ?? json.Int(json.Required(item, "id", path), JsonFields.Join(path, "id"));
        string content = json.RequiredString(item, "content", path);
        if (content.Length == 0) throw json.Error(JsonFields.Join(path, "content"), "an added token cannot be empty.");
        bool special = json.Bool(item, "special", path, false);
        return new AddedToken(tokenId, content, special,
            LStrip: json.Bool(item, "lstrip", path, false), RStrip: json.Bool(item, "rstrip", path, false),
            SingleWord: json.Bool(item, "single_word", path, false),
            Normalized: json.Bool(item, "normalized", path, !special));
    }
}
