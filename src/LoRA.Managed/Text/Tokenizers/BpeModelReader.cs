using System.Text.Json;

namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// Builds a <see cref="BpeModel"/> from a vocabulary and merge rules, checking what HF's <c>BpeBuilder</c> checks:
/// both sides of every merge and their concatenation are in the vocabulary (else
/// <c>MergeTokenOutOfVocabulary</c>), and the unknown token, when named, is too.
/// </summary>
internal static class BpeModelReader
{
    /// <summary>Reads the <c>model</c> object of a tokenizer.json.</summary>
    public static BpeModel FromJson(JsonFields json, JsonElement model, string path)
    {
        json.Object(model, path);
        // "type" is optional in old files (serde picks the model by its fields); when present it must be BPE.
        if (JsonFields.Member(model, "type") is { } t && json.String(t, JsonFields.Join(path, "type")) is var type
            && type != "BPE")
            throw json.Unsupported(path, $"model \"{type}\"", "BPE");
        if (JsonFields.Member(model, "dropout") is { } dropout
            && (dropout.ValueKind != JsonValueKind.Number || !dropout.TryGetDouble(out double p) || p != 0))
            throw json.Error(JsonFields.Join(path, "dropout"),
                $"BPE dropout {JsonFields.Describe(dropout)} is not supported (it makes encoding " +
                "random); expected null.");
        foreach (string affix in (string[])["continuing_subword_prefix", "end_of_word_suffix"])
            if (json.OptionalString(model, affix, path) is { Length: > 0 } value)
                throw json.Error(JsonFields.Join(path, affix), $"\"{value}\" is not supported (only null or \"\").");

        var vocabElement = json.Object(json.Required(model, "vocab", path), JsonFields.Join(path, "vocab"));
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in vocabElement.EnumerateObject())
            vocab[entry.Name] = json.Int(entry.Value, $"{path}.vocab.{Quote(entry.Name)}");

        string mergesPath = JsonFields.Join(path, "merges");
        var mergesElement = json.Array(json.Required(model, "merges", path), mergesPath);
        var pairs = new List<(string, string)>(mergesElement.GetArrayLength());
        int i = 0;
        foreach (var merge in mergesElement.EnumerateArray())
        {
            string field = $"{mergesPath}[{i++}]";
            if (merge.ValueKind == JsonValueKind.String) pairs.Add(SplitMerge(json, merge.GetString()!, field));
            else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2)
                pairs.Add((json.String(merge[0], field + "[0]"), json.String(merge[1], field + "[1]")));
            else throw json.Error(field, $"expected \"a b\" or [\"a\", \"b\"], found {JsonFields.Describe(merge)}.");
        }
        return Build(json, vocab, pairs, mergesPath, json.OptionalString(model, "unk_token", path),
            JsonFields.Join(path, "unk_token"),
            json.Bool(model, "fuse_unk", path, false), json.Bool(model, "byte_fallback", path, false),
            json.Bool(model, "ignore_merges", path, false));
    }

    /// <summary>A merges line <c>"a b"</c>: exactly one space (HF splits on ' ' and wants two parts).</summary>
    public static (string, string) SplitMerge(JsonFields json, string line, string field)
    {
        int space = line.IndexOf(' ');
        if (space < 0 || line.IndexOf(' ', space + 1) >= 0)
            throw json.Error(field, $"expected two tokens separated by one space, found \"{Cut(line)}\".");
        return (line[..space], line[(space + 1)..]);
    }

    public static BpeModel Build(JsonFields json, Dictionary<string, int> vocab,
        List<(string Left, string Right)> pairs, string mergesField,
        string? unknownToken, string unknownField, bool fuseUnknown, bool byteFallback, bool ignoreMerges)
    {
        var merges = new BpeMerges(pairs.Count);
        bool crossesMetaspace = false;
        for (int rank = 0; rank < pairs.Count; rank++)
        {
            var (left, right) = pairs[rank];
            if (!vocab.TryGetValue(left, out int a) || !vocab.TryGetValue(right, out int b)
                || !vocab.TryGetValue(left + right, out int merged))
            {
                string missing = !vocab.ContainsKey(left) ? left : !vocab.ContainsKey(right) ? right : left + right;
                throw json.Error($"{mergesField}[{rank}]",
                    $"merge \"{Cut(left)} {Cut(right)}\" uses \"{Cut(missing)}\", which is not in the vocabulary.");
            }
            merges.Set(a, b, rank, merged);
            crossesMetaspace = crossesMetaspace || BpeModel.CrossesMetaspace(left + right);
        }
        int unknownId = -1;
        if (unknownToken is not null && !vocab.TryGetValue(unknownToken, out unknownId))
            throw json.Error(unknownField, $"\"{Cut(unknownToken)}\" is not in the vocabulary.");
        return new BpeModel(vocab, merges, unknownId, fuseUnknown, byteFallback, ignoreMerges, crossesMetaspace);
    }

    private static string Quote(string name) => name.Length <= 30 ? name : name[..30] + "…";

    private static string Cut(string s) => s.Length <= 30 ? s : s[..30] + "…";
}
