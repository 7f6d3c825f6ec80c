using System.Buffers.Binary;
using System.Text;
using CsCheck;
using LoRA.Managed.Tests.Text.Tokenizers;
using LoRA.Managed.Text.Tokenizers;

namespace LoRA.Managed.Tests.Fuzz;

/// <summary>
/// The tokenizer file readers against 10,000 seeded mutations each (tokenizer.json; vocab.json + merges.txt;
/// tokenizer_config.json): structural JSON edits, including swaps to the component kinds and options tokenizer
/// files use, and byte-level damage. Every case must end in success or
/// <see cref="LoRA.Managed.IO.InvalidDataFormatException"/> naming the field, and an accepted tokenizer must encode and
/// decode sample texts without throwing.
/// </summary>
public class TokenizerFuzzTests
{
    internal sealed record TextCase(int Base, JsonEdit[] Edits, ByteMutation[] Bytes)
    {
        public override string ToString() =>
            $"base {Base}, edits [{string.Join(", ", Edits.AsEnumerable())}], bytes " +
            $"[{string.Join(", ", Bytes.AsEnumerable())}]";
    }

    /// <summary>Puts raw JSON from <see cref="TokenizerValues"/> at a node: component kinds, options and patterns of
    /// tokenizer files.</summary>
    internal sealed record SetTokenizerValue(int Node, int Value) : JsonEdit
    {
        public override void Apply(JsonEditor doc) =>
            doc.Set(doc.Slot(Node), doc.Raw(TokenizerValues[Value % TokenizerValues.Length]));
    }

    internal static readonly string[] TokenizerValues =
    [
        "\"BPE\"", "\"WordPiece\"", "\"ByteLevel\"", "\"Metaspace\"", "\"Sequence\"", "\"Split\"", "\"Digits\"",
        "\"NFC\"", "\"NFKD\"", "\"Isolated\"", "\"MergedWithNext\"", "\"MergedWithPrevious\"", "\"Contiguous\"",
        "\"Removed\"", "\"first\"", "\"always\"", "\"never\"", "\"\u2581\"", "\"<s>\"", "\"</s>\"", "\"<unk>\"",
        "\"a b\"", "\"a\"", "\"\u2581 t\"", "[\"a\",\"b\"]", "[\"\u2581\",\"t\"]", "[\"a\"]",
        "{\"Regex\":\"\\\\p{L}+\"}", "{\"Regex\":\"(\"}", "{\"Regex\":\"\\\\s*\"}", "{\"String\":\" \"}",
        "{\"String\":\"\"}",
        "{\"type\":\"ByteLevel\"}", "{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":false}",
        "{\"type\":\"Metaspace\",\"replacement\":\"\u2581\",\"prepend_scheme\":\"first\",\"split\":true}",
        "{\"type\":\"Digits\",\"individual_digits\":true}",
        "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}", "{\"type\":\"NFC\"}",
        "{\"type\":\"Prepend\",\"prepend\":\"\u2581\"}",
        "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\u2581\"}", "{\"type\":\"ByteFallback\"}",
        "{\"type\":\"Fuse\"}", "{\"type\":\"TemplateProcessing\",\"single\":[{\"Sequence\":{\"id\":\"A\"}}]}",
        "{\"Sequence\":{\"id\":\"B\"}}", "{\"SpecialToken\":{\"id\":\"<s>\"}}",
        "{\"id\":5,\"content\":\"x\",\"special\":true,\"lstrip\":true,\"rstrip\":true,\"single_word\":true}",
        "{\"ids\":[99999999]}", "{\"ids\":[-1]}",
        "{\"type\":\"Split\",\"pattern\":{\"Regex\":\" " +
        "?\\\\p{L}+|\\\\p{N}{1,3}\"},\"behavior\":\"Isolated\",\"invert\":true}",
    ];

    private static Gen<JsonEdit> Edits() => Gen.Frequency(
        (3, JsonEdits.Any()),
        (2, Gen.Select(Gen.Int[0, int.MaxValue], Gen.Int[0, TokenizerValues.Length - 1],
            (n, v) => (JsonEdit)new SetTokenizerValue(n, v))));

    private static Gen<TextCase> Cases(int bases)
    {
        var edits = Edits().Array[1, 3];
        var bytes = ByteMutation.Any([0, 8, 16], 4, bigEndian: false).Array[1, 3];
        var b = Gen.Int[0, bases - 1];
        return Gen.Frequency(
            (6, Gen.Select(b, edits, (i, e) => new TextCase(i, e, []))),
            (3, Gen.Select(b, bytes, (i, m) => new TextCase(i, [], m))),
            (1, Gen.Select(b, edits, bytes, (i, e, m) => new TextCase(i, e, m))));
    }

    private static byte[] Build(byte[][] bases, TextCase c)
    {
        byte[] json = c.Edits.Length == 0 ? bases[c.Base] : JsonEdits.Apply(bases[c.Base], c.Edits);
        foreach (var m in c.Bytes) json = m.Apply(json);
        return json;
    }

    private static readonly string[] Samples = ["", "Once upon a time", " a  b\t\n", "<s>x</s>", "héllo 日本 😀 𝐀 123456",
        "\u2581\u2581", "a\uD800"];

    /// <summary>An accepted tokenizer must run: encode, decode and stream every sample without throwing.</summary>
    private static void Exercise(HfTokenizer t)
    {
        try
        {
            foreach (string s in Samples)
            {
                int[] ids = t.Encode(s);
                _ = t.Decode(ids);
                _ = t.Decode(ids, skipSpecialTokens: true);
                var stream = t.CreateStreamingDecoder();
                foreach (int id in ids) stream.Append(id);
            }
        }
        catch (Exception e)
        {
            throw new FuzzFailure($"accepted a tokenizer that then failed: {e.GetType().Name}: {e.Message}", e);
        }
    }

    // Small real-shaped files: stories260K's own tokenizer.json (SentencePiece BPE, pair merges), a byte-level one
    // (string merges, Split + ByteLevel, ignore_merges, added tokens) and a Metaspace one.
    private static byte[][] TokenizerJsonBases()
    {
        byte[] stories = File.ReadAllBytes(Path.Combine(TokenizerFixtures.SharedStories260K, "tokenizer.json"));
        var vocab = new StringBuilder();
        for (int b = 0; b < 256; b++)
            vocab.Append(System.Text.Json.JsonSerializer.Serialize(ByteChar(b))).Append(':').Append(b).Append(',');
        vocab.Append("\"ab\":256,\"abc\":257,\"\u0120a\":258,\"<|endoftext|>\":259");
        string byteLevel = "{\"added_tokens\":[{\"id\":259,\"content\":\"<|endoftext|>\",\"special\":true," +
            "\"normalized\":false}]," +
            "\"normalizer\":{\"type\":\"NFC\"},\"pre_tokenizer\":{\"type\":\"Sequence\"," +
            "\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":" +
            "\"(?i:'s|'t)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| " +
            "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"}," +
            "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_space\":false," +
            "\"use_regex\":false}]}," +
            "\"post_processor\":{\"type\":\"ByteLevel\"},\"decoder\":{\"type\":\"ByteLevel\"}," +
            "\"model\":{\"type\":\"BPE\",\"ignore_merges\":true," +
            "\"vocab\":{" + vocab + "},\"merges\":[\"a b\",\"ab c\",\"\u0120 a\"]}}";
        string metaspace = Encoding.UTF8.GetString(stories)
            .Replace("\"pre_tokenizer\": null",
                "\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\u2581\"," +
                "\"prepend_scheme\":\"always\",\"split\":true}");
        return [stories, Encoding.UTF8.GetBytes(byteLevel), Encoding.UTF8.GetBytes(metaspace)];
    }

    private static string ByteChar(int b) => b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF
        ? ((char)b).ToString() : ((char)(256 + Array.IndexOf(NonPrintable, b))).ToString();

    private static readonly int[] NonPrintable = Enumerable.Range(0, 256)
        .Where(b => !(b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF)).ToArray();

    [Test]
    public void TokenizerJsonEndsInSuccessOrTheDocumentedException()
    {
        var bases = TokenizerJsonBases();
        // the bases themselves are valid
        foreach (var b in bases) Exercise(HfTokenizer.FromTokenizerJsonBytes(b, "base"));
        var report = ParserFuzzer.Run("tokenizer.json", Cases(bases.Length), 0x70C0_0001UL, c => Build(bases, c),
            bytes => HfTokenizer.FromTokenizerJsonBytes(bytes, ParserFuzzer.Source),
            (_, result) => Exercise((HfTokenizer)result));
        ParserFuzzer.AssertMixed(report, minAcceptedShare: 0.05);
    }

    [Test]
    public void TokenizerConfigEndsInSuccessOrTheDocumentedException()
    {
        byte[][] bases =
        [
            File.ReadAllBytes(Path.Combine(TokenizerFixtures.SharedStories260K, "tokenizer_config.json")),
            File.ReadAllBytes(Path.Combine(TokenizerFixtures.SharedStories260K, "special_tokens_map.json")),
            Encoding.UTF8.GetBytes("{\"add_bos_token\":false,\"bos_token\":null,\"eos_token\":\"<|im_end|>\"," +
                "\"pad_token\":\"<|endoftext|>\"," +
                "\"additional_special_tokens\":[\"<|im_start|>\",{\"content\":\"<|x|>\"}]," +
                "\"tokenizer_class\":\"Qwen2Tokenizer\",\"add_prefix_space\":false}"),
        ];
        var report = ParserFuzzer.Run("tokenizer_config.json", Cases(bases.Length), 0x70C0_0002UL, c => Build(bases, c),
            bytes => TokenizerConfig.Parse(bytes, ParserFuzzer.Source), (_, _) => { });
        ParserFuzzer.AssertMixed(report, minAcceptedShare: 0.05);
    }

    internal sealed record PairCase(TextCase Vocab, ByteMutation[] Merges);

    [Test]
    public void VocabAndMergesEndInSuccessOrTheDocumentedException()
    {
        byte[][] vocabs = [
            Encoding.UTF8.GetBytes("{\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"abc\":4,\"\u0120\":5,\"\u0120a\":6," +
                "\"<|endoftext|>\":7,\"x\":8,\"y\":9,\"z\":10,\"xy\":11,\"zz\":12}")];
        byte[] merges = Encoding.UTF8.GetBytes("#version: 0.2\na b\nab c\n\u0120 a\n");
        // Half the cases leave merges.txt alone, so that vocabulary edits are not all hidden behind a broken merges
        // file.
        var mergeEdits = Gen.Frequency((1, Gen.Const(Array.Empty<ByteMutation>())),
            (1, ByteMutation.Any([0, 14, 18], 2, bigEndian: false).Array[1, 3]));
        var gen = Gen.Select(Cases(1), mergeEdits, (v, m) => new PairCase(v, m));
        // One input: the vocabulary's length (4 bytes, never mutated), the vocabulary, then merges.txt.
        byte[] BuildPair(PairCase c)
        {
            byte[] v = Build(vocabs, c.Vocab), m = merges;
            foreach (var mutation in c.Merges) m = mutation.Apply(m);
            var bytes = new byte[4 + v.Length + m.Length];
            BinaryPrimitives.WriteInt32LittleEndian(bytes, v.Length);
            v.CopyTo(bytes, 4);
            m.CopyTo(bytes, 4 + v.Length);
            return bytes;
        }
        object Parse(byte[] bytes)
        {
            int n = BinaryPrimitives.ReadInt32LittleEndian(bytes);
            return VocabMergesReader.Read(bytes.AsMemory(4, n), ParserFuzzer.Source, bytes.AsMemory(4 + n),
                ParserFuzzer.Source);
        }
        // Every merge names vocabulary entries, so most vocabulary edits are rightly refused: expect fewer acceptances.
        var report = ParserFuzzer.Run("vocab.json + merges.txt", gen, 0x70C0_0003UL, BuildPair, Parse, (_, result) =>
        {
            var model = (BpeModel)result;
            var ids = new List<int>();
            model.Tokenize("abc\u0120a\u0120abz", new BpeMerger(), ids);
            if (ids.Any(id => !model.IdToToken.ContainsKey(id)))
                throw new FuzzFailure("an accepted model produced an id that is no token");
        });
        ParserFuzzer.AssertMixed(report, minAcceptedShare: 0.02);
    }
}
