using System.Text;
using System.Text.Json;

namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// Reads the pipeline components of a tokenizer.json (<c>normalizer</c>, <c>pre_tokenizer</c>, <c>decoder</c>,
/// <c>post_processor</c>). Each kind a BPE tokenizer of the GPT-2, Llama and Qwen families uses is read with its
/// options; any other kind or option value is refused with the file and the JSON path of its <c>type</c>.
/// </summary>
internal sealed class TokenizerComponentsReader(JsonFields json)
{
    private const string NormalizerKinds = "Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD";
    private const string PreTokenizerKinds = "Sequence, ByteLevel, Split, Metaspace, Digits";
    private const string DecoderKinds = "Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace";
    private const string PostProcessorKinds = "TemplateProcessing, ByteLevel, Sequence";

    public Normalizer? Normalizer(JsonElement? element, string path)
    {
        if (element is not { } e) return null;
        string type = json.Type(e, path);
        switch (type)
        {
            case "Sequence":
                var items = json.Array(json.Required(e, "normalizers", path), JsonFields.Join(path, "normalizers"));
                var list = new List<Normalizer>();
                int i = 0;
                foreach (var item in items.EnumerateArray())
                    if (Normalizer(item, $"{path}.normalizers[{i++}]") is { } n) list.Add(n);
                return new SequenceNormalizer(list);
            case "Prepend":
                return new PrependNormalizer(json.RequiredString(e, "prepend", path));
            case "Replace":
                var (pattern, content) = StringReplace(e, path);
                return new ReplaceNormalizer(pattern, content);
            case "NFC": return new UnicodeNormalizer(NormalizationForm.FormC);
            case "NFD": return new UnicodeNormalizer(NormalizationForm.FormD);
            case "NFKC": return new UnicodeNormalizer(NormalizationForm.FormKC);
            case "NFKD": return new UnicodeNormalizer(NormalizationForm.FormKD);
            default: throw json.Unsupported(path, $"normalizer \"{type}\"", NormalizerKinds);
        }
    }

    /// <summary>The pre-tokenizer, and whether it ends with <c>ByteLevel</c> (the words then reach the model as
    /// bytes).</summary>
    public (PreTokenizer? PreTokenizer, bool ByteLevel) PreTokenizer(JsonElement? element, string path)
    {
        if (element is not { } e) return (null, false);
        string type = json.Type(e, path);
        if (type != "Sequence") return (Single(e, type, path, last: true), type == "ByteLevel");
        var items = json.Array(json.Required(e, "pretokenizers", path), JsonFields.Join(path, "pretokenizers"))
            .EnumerateArray().ToList();
        var steps = new List<PreTokenizer>();
        bool byteLevel = false;
        for (int i = 0; i < items.Count; i++)
        {
            string itemPath = $"{path}.pretokenizers[{i}]";
            string itemType = json.Type(items[i], itemPath);
            if (itemType == "Sequence")
                throw json.Unsupported(itemPath, "a Sequence inside a Sequence", PreTokenizerKinds);
            steps.Add(Single(items[i], itemType, itemPath, last: i == items.Count - 1));
            byteLevel = itemType == "ByteLevel";
        }
        return (new SequencePreTokenizer(steps), byteLevel);
    }

    private PreTokenizer Single(JsonElement e, string type, string path, bool last)
    {
        switch (type)
        {
            case "ByteLevel":
                // The byte mapping is applied when words reach the model, which is only right when nothing follows it.
                if (!last)
                    throw json.Error(JsonFields.Join(path, "type"),
                        "ByteLevel is supported only as the last pre-tokenizer.");
                return new ByteLevelPreTokenizer(json.Bool(e, "add_prefix_space", path, true),
                    json.Bool(e, "use_regex", path, true));
            case "Split":
                var pattern = json.Object(json.Required(e, "pattern", path), JsonFields.Join(path, "pattern"));
                var regex = Pattern(pattern, JsonFields.Join(path, "pattern"));
                return new SplitPreTokenizer(regex,
                    Behavior(json.RequiredString(e, "behavior", path), JsonFields.Join(path, "behavior")),
                    json.Bool(e, "invert", path, false));
            case "Metaspace":
                char replacement = OneChar(json.RequiredString(e, "replacement", path),
                    JsonFields.Join(path, "replacement"));
                return new MetaspacePreTokenizer(replacement, PrependScheme(e, path),
                    json.Bool(e, "split", path, true));
            case "Digits":
                return new DigitsPreTokenizer(json.Bool(e, "individual_digits", path, false));
            default:
                throw json.Unsupported(path, $"pre-tokenizer \"{type}\"", PreTokenizerKinds);
        }
    }

    public TokenDecoder? Decoder(JsonElement? element, string path)
    {
        if (element is not { } e) return null;
        string type = json.Type(e, path);
        switch (type)
        {
            case "Sequence":
                var items = json.Array(json.Required(e, "decoders", path), JsonFields.Join(path, "decoders"));
                var list = new List<TokenDecoder>();
                int i = 0;
                foreach (var item in items.EnumerateArray())
                    if (Decoder(item, $"{path}.decoders[{i++}]") is { } d) list.Add(d);
                return new SequenceDecoder(list);
            case "ByteLevel": return new ByteLevelDecoder();
            case "ByteFallback": return new ByteFallbackDecoder();
            case "Fuse": return new FuseDecoder();
            case "Replace":
                var (pattern, content) = StringReplace(e, path);
                return new ReplaceDecoder(pattern, content);
            case "Strip":
                return new StripDecoder(OneChar(json.RequiredString(e, "content", path),
                    JsonFields.Join(path, "content")),
                    json.Int(json.Required(e, "start", path), JsonFields.Join(path, "start")),
                    json.Int(json.Required(e, "stop", path), JsonFields.Join(path, "stop")));
            case "Metaspace":
                char replacement = OneChar(json.RequiredString(e, "replacement", path),
                    JsonFields.Join(path, "replacement"));
                return new MetaspaceDecoder(replacement, PrependScheme(e, path) != MetaspacePreTokenizer.Prepend.Never);
            default:
                throw json.Unsupported(path, $"decoder \"{type}\"", DecoderKinds);
        }
    }

    /// <summary>The special tokens the post-processor adds; <paramref name="idOf"/> resolves a template's token
    /// ids.</summary>
    public SpecialTokenTemplate PostProcessor(JsonElement? element, string path, Func<string, int?> idOf)
    {
        if (element is not { } e) return SpecialTokenTemplate.None;
        string type = json.Type(e, path);
        switch (type)
        {
            case "ByteLevel": return SpecialTokenTemplate.None;
            case "Sequence":
                var items = json.Array(json.Required(e, "processors", path), JsonFields.Join(path, "processors"));
                var all = SpecialTokenTemplate.None;
                int i = 0;
                foreach (var item in items.EnumerateArray())
                    all = all.Then(PostProcessor(item, $"{path}.processors[{i++}]", idOf));
                return all;
            case "TemplateProcessing": return Template(e, path, idOf);
            default: throw json.Unsupported(path, $"post-processor \"{type}\"", PostProcessorKinds);
        }
    }

    private SpecialTokenTemplate Template(JsonElement e, string path, Func<string, int?> idOf)
    {
        string singlePath = JsonFields.Join(path, "single");
        var single = json.Array(json.Required(e, "single", path), singlePath);
        var specials = JsonFields.Member(e, "special_tokens") is { } s
            ? json.Object(s, JsonFields.Join(path, "special_tokens")) : (JsonElement?)null;
        List<int> prefix = [], suffix = [];
        bool seenSequence = false;
        int i = 0;
        foreach (var piece in single.EnumerateArray())
        {
            string piecePath = $"{singlePath}[{i++}]";
            json.Object(piece, piecePath);
            if (JsonFields.Member(piece, "Sequence") is { } seq)
            {
                string id = json.RequiredString(json.Object(seq, piecePath + ".Sequence"), "id",
                    piecePath + ".Sequence");
                if (id != "A" || seenSequence)
                    throw json.Error(piecePath + ".Sequence.id",
                        $"a single-text template must hold $A once; found \"{id}\".");
                seenSequence = true;
            }
            else if (JsonFields.Member(piece, "SpecialToken") is { } special)
            {
                string tokenPath = piecePath + ".SpecialToken";
                string name = json.RequiredString(json.Object(special, tokenPath), "id", tokenPath);
                (seenSequence ? suffix : prefix).AddRange(SpecialIds(specials, name, path, idOf));
            }
            else throw json.Error(piecePath, "expected a \"Sequence\" or \"SpecialToken\" entry.");
        }
        if (!seenSequence) throw json.Error(singlePath, "the template has no $A.");
        return new SpecialTokenTemplate([.. prefix], [.. suffix]);
    }

    private IEnumerable<int> SpecialIds(JsonElement? specials, string name, string path, Func<string, int?> idOf)
    {
        string field = $"{path}.special_tokens.{name}";
        if (specials is { } map && JsonFields.Member(map, name) is { } entry)
        {
            var ids = json.Array(json.Required(json.Object(entry, field), "ids", field), field + ".ids");
            return ids.EnumerateArray().Select((id, k) => json.Int(id, $"{field}.ids[{k}]")).ToList();
        }
        return idOf(name) is { } known ? [known]
            : throw json.Error(field, $"the template names \"{name}\", which is not a known token.");
    }

    private CodePointRegex Pattern(JsonElement pattern, string path)
    {
        string source;
        if (JsonFields.Member(pattern, "Regex") is { } r) source = json.String(r, path + ".Regex");
        else if (JsonFields.Member(pattern, "String") is { } s)
            source = System.Text.RegularExpressions.Regex.Escape(json.String(s, path + ".String"));
        else throw json.Error(path, "expected {\"Regex\": ...} or {\"String\": ...}.");
        if (source.Length == 0) throw json.Error(path, "the pattern is empty.");
        try { return CodePointRegex.Create(source); }
        catch (ArgumentException ex) { throw json.Error(path, $"not a regex .NET can run ({ex.Message}).", ex); }
    }

    private (string Pattern, string Content) StringReplace(JsonElement e, string path)
    {
        string patternPath = JsonFields.Join(path, "pattern");
        var pattern = json.Object(json.Required(e, "pattern", path), patternPath);
        if (JsonFields.Member(pattern, "String") is not { } s)
            throw json.Error(patternPath, "only {\"String\": ...} patterns are supported in Replace.");
        string text = json.String(s, patternPath + ".String");
        if (text.Length == 0) throw json.Error(patternPath + ".String", "the pattern is empty.");
        return (text, json.RequiredString(e, "content", path));
    }

    private SplitBehavior.Kind Behavior(string value, string path) => value switch
    {
        "Removed" => SplitBehavior.Kind.Removed,
        "Isolated" => SplitBehavior.Kind.Isolated,
        "MergedWithPrevious" => SplitBehavior.Kind.MergedWithPrevious,
        "MergedWithNext" => SplitBehavior.Kind.MergedWithNext,
        "Contiguous" => SplitBehavior.Kind.Contiguous,
        _ => throw json.Error(path,
            $"\"{value}\" is not a split behavior (Removed, Isolated, MergedWithPrevious, " +
            "MergedWithNext, Contiguous)."),
    };

    // prepend_scheme ("always", "first", "never"), or the older add_prefix_space boolean.
    private MetaspacePreTokenizer.Prepend PrependScheme(JsonElement e, string path)
    {
        if (json.OptionalString(e, "prepend_scheme", path) is { } scheme)
            return scheme switch
            {
                "always" => MetaspacePreTokenizer.Prepend.Always,
                "first" => MetaspacePreTokenizer.Prepend.First,
                "never" => MetaspacePreTokenizer.Prepend.Never,
                _ => throw json.Error(JsonFields.Join(path, "prepend_scheme"),
                    $"\"{scheme}\" is not always, first or never."),
            };
        return json.Bool(e, "add_prefix_space", path, true) ? MetaspacePreTokenizer.Prepend.Always
            : MetaspacePreTokenizer.Prepend.Never;
    }

    private char OneChar(string value, string path) =>
        value.Length == 1 ? value[0] : throw json.Error(path, $"expected one character, found \"{Cut(value)}\".");

    private static string Cut(string s) => s.Length <= 20 ? s : s[..20] + "…";
}
