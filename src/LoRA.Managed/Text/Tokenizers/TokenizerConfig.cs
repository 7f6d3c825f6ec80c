using System.Text.Json;
using LoRA.Managed.IO;

namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// What transformers reads from <c>tokenizer_config.json</c> (and, for tokens it does not name,
/// <c>special_tokens_map.json</c>) that changes token ids: the special tokens, <c>add_bos_token</c> /
/// <c>add_eos_token</c>, <c>add_prefix_space</c>, <c>tokenizer_class</c> and <c>added_tokens_decoder</c>.
/// Everything else in those files (chat templates, lengths, padding side) is ignored.
/// </summary>
internal sealed record TokenizerConfig(string? BosToken, string? EosToken, string? PadToken, string? UnknownToken,
    bool? AddBosToken, bool? AddEosToken, bool? AddPrefixSpace, string? TokenizerClass,
    IReadOnlyList<AddedToken> AddedTokensDecoder, IReadOnlyList<string> AdditionalSpecialTokens)
{
    private const int MaxDepth = 64;

    /// <summary>No configuration file.</summary>
    public static readonly TokenizerConfig Empty = new(null, null, null, null, null, null, null, null, [], []);

    /// <summary>Reads the configuration; either path may be null or name a missing file.</summary>
    /// <exception cref="InvalidDataFormatException">A file is not valid JSON or a field has the wrong type.</exception>
    public static TokenizerConfig Read(string? configPath, string? specialTokensMapPath)
    {
        var config = configPath is not null && File.Exists(configPath)
            ? Parse(File.ReadAllBytes(configPath), configPath) : Empty;
        if (specialTokensMapPath is null || !File.Exists(specialTokensMapPath)) return config;
        var map = Parse(File.ReadAllBytes(specialTokensMapPath), specialTokensMapPath);
        return config with
        {
            BosToken = config.BosToken ?? map.BosToken,
            EosToken = config.EosToken ?? map.EosToken,
            PadToken = config.PadToken ?? map.PadToken,
            UnknownToken = config.UnknownToken ?? map.UnknownToken,
            AdditionalSpecialTokens = [.. config.AdditionalSpecialTokens, .. map.AdditionalSpecialTokens],
        };
    }

    /// <summary>Parses one file's bytes (tokenizer_config.json or special_tokens_map.json: the token fields are the
    /// same).</summary>
    public static TokenizerConfig Parse(ReadOnlyMemory<byte> utf8, string file)
    {
        var json = new JsonFields(file);
        using var document = StrictJson.Parse(utf8, file, "json", MaxDepth);
        var root = json.Object(document.RootElement, "json");
        var added = new List<AddedToken>();
        if (JsonFields.Member(root, "added_tokens_decoder") is { } decoder)
            foreach (var entry in json.Object(decoder, "added_tokens_decoder").EnumerateObject())
            {
                string path = $"added_tokens_decoder.{entry.Name}";
                if (!int.TryParse(entry.Name, System.Globalization.NumberStyles.None, null, out int id))
                    throw json.Error(path, "the key must be a token id (a non-negative integer).");
                added.Add(TokenizerJsonReader.ReadAddedToken(json, entry.Value, path, id));
            }
        var additional = new List<string>();
        if (JsonFields.Member(root, "additional_special_tokens") is { } extra)
        {
            int i = 0;
            foreach (var item in json.Array(extra, "additional_special_tokens").EnumerateArray())
                if (Token(json, item, $"additional_special_tokens[{i++}]") is { } token) additional.Add(token);
        }
        return new TokenizerConfig(
            NamedToken(json, root, "bos_token"), NamedToken(json, root, "eos_token"),
            NamedToken(json, root, "pad_token"),
            NamedToken(json, root, "unk_token"),
            OptionalBool(json, root, "add_bos_token"), OptionalBool(json, root, "add_eos_token"),
            OptionalBool(json, root, "add_prefix_space"),
            json.OptionalString(root, "tokenizer_class", ""), added, additional);
    }

    // A token is written as its text or as an AddedToken object {"content": ...}; null means none.
    private static string? NamedToken(JsonFields json, JsonElement root, string name) =>
        JsonFields.Member(root, name) is { } value ? Token(json, value, name) : null;

    private static string? Token(JsonFields json, JsonElement value, string path) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString(),
        JsonValueKind.Object => json.RequiredString(value, "content", path),
        JsonValueKind.Null => null,
        _ => throw json.Error(path,
            $"expected a token string or {{\"content\": ...}}, found {JsonFields.Describe(value)}."),
    };

    private static bool? OptionalBool(JsonFields json, JsonElement root, string name) =>
        JsonFields.Member(root, name) is null ? null : json.Bool(root, name, "", false);
}
