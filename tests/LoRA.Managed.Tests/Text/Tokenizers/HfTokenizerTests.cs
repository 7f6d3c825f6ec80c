using LoRA.Managed.IO;
using LoRA.Managed.Text.Tokenizers;

namespace LoRA.Managed.Tests.Text.Tokenizers;

/// <summary>Special-token ids, vocabulary sizes, configuration overrides and the refusals of unsupported
/// files.</summary>
public class HfTokenizerTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() =>
        Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), "lora-tok-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void Stories260KFolder()
    {
        var t = TokenizerFixtures.Tokenizer("stories260K");
        Assert.That((t.BosTokenId, t.EosTokenId, t.PadTokenId, t.VocabSize),
            Is.EqualTo(((int?)1, (int?)2, (int?)null, 512)));
        Assert.That(t.TokenToString(1), Is.EqualTo("<s>"));
        Assert.That(t.TokenToId("<unk>"), Is.EqualTo(0));
        Assert.That(t.TokenToId("no such token"), Is.Null);
        Assert.That(t.TokenToString(512), Is.Null);
        Assert.That(t.Encode("Once upon a time")[0], Is.EqualTo(1));
        Assert.That(t.Decode(t.Encode("Once upon a time"), skipSpecialTokens: true), Is.EqualTo("Once upon a time"));
    }

    [TestCase("llama2", 1, 2, null, 32000)]
    [TestCase("llama3", 128000, 128001, null, 128256)]
    [TestCase("qwen3", null, 151645, 151643, 151669)]
    public void SpecialTokensComeFromTheConfiguration(string variant, int? bos, int? eos, int? pad, int vocabSize)
    {
        var t = TokenizerFixtures.Tokenizer(variant);
        Assert.That((t.BosTokenId, t.EosTokenId, t.PadTokenId, t.VocabSize), Is.EqualTo((bos, eos, pad, vocabSize)));
    }

    private string Stories(string config)
    {
        File.Copy(Path.Combine(TokenizerFixtures.SharedStories260K, "tokenizer.json"),
            Path.Combine(_dir, "tokenizer.json"), overwrite: true);
        File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"), config);
        return _dir;
    }

    [Test]
    public void AddBosAndAddEosOverrideTheTemplate()
    {
        int[] plain = TokenizerFixtures.Tokenizer("stories260K").Encode("Lily", addSpecialTokens: false);
        var both = HfTokenizer.FromFolder(
            Stories("""{"bos_token":"<s>","eos_token":"</s>","add_bos_token":true,"add_eos_token":true}"""));
        Assert.That(both.Encode("Lily"), Is.EqualTo((int[])[1, .. plain, 2]));
        Assert.That(both.Encode("Lily", addSpecialTokens: false), Is.EqualTo(plain));
        var none = HfTokenizer.FromFolder(Stories("""{"bos_token":{"content":"<s>"},"add_bos_token":false}"""));
        Assert.That(none.Encode("Lily"), Is.EqualTo(plain));
        var unset = HfTokenizer.FromFolder(Stories("""{"eos_token":"</s>","add_eos_token":false}"""));
        Assert.That(unset.Encode("Lily"), Is.EqualTo((int[])[1, .. plain]),
            "without add_bos_token the file's template keeps its <s>");
    }

    [Test]
    public void SpecialTokensMapAloneNamesTheSpecialTokens()
    {
        File.Copy(Path.Combine(TokenizerFixtures.SharedStories260K, "tokenizer.json"),
            Path.Combine(_dir, "tokenizer.json"));
        File.Copy(Path.Combine(TokenizerFixtures.SharedStories260K, "special_tokens_map.json"),
            Path.Combine(_dir, "special_tokens_map.json"));
        var t = HfTokenizer.FromFolder(_dir);
        Assert.That((t.BosTokenId, t.EosTokenId), Is.EqualTo(((int?)1, (int?)2)));
        Assert.Throws<FileNotFoundException>(() => HfTokenizer.FromTokenizerJson(Path.Combine(_dir, "tokenizer.json"),
            Path.Combine(_dir, "missing.json")));
    }

    [Test]
    public void Gpt2AddPrefixSpaceFromTheConfigurationRebuildsTheByteLevelStep()
    {
        File.WriteAllBytes(Path.Combine(_dir, "tokenizer.json"), TokenizerFixtures.VariantJson("gpt2"));
        File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"), """{"add_prefix_space":true}""");
        var gpt2 = TokenizerFixtures.Tokenizer("gpt2");
        var prefixed = HfTokenizer.FromFolder(_dir);
        Assert.That(prefixed.Encode("Hello world"), Is.EqualTo(gpt2.Encode(" Hello world")));
        Assert.That(gpt2.Encode("Hello world"), Is.Not.EqualTo(gpt2.Encode(" Hello world")));
        File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"),
            """{"add_prefix_space":true,"tokenizer_class":"Qwen2Tokenizer"}""");
        Assert.That(HfTokenizer.FromFolder(_dir).Encode("Hello world"), Is.EqualTo(gpt2.Encode("Hello world")),
            "other classes keep the file's pipeline");
    }

    [Test]
    public void AddEosWithoutAnEosTokenIsRefused()
    {
        var e = Assert.Throws<InvalidDataFormatException>(() =>
            HfTokenizer.FromFolder(Stories("""{"eos_token":"<nope>","add_eos_token":true}""")))!;
        Assert.That(e.Field, Is.EqualTo("add_eos_token"));
        Assert.That(e.Message, Does.StartWith(Path.Combine(_dir, "tokenizer_config.json")).And.Contain("<nope>"));
    }

    [Test]
    public void FolderWithoutTokenizerFilesSaysWhatIsMissing()
    {
        var e = Assert.Throws<FileNotFoundException>(() => HfTokenizer.FromFolder(_dir))!;
        Assert.That(e.Message, Does.Contain(_dir).And.Contain("tokenizer.json").And.Contain("vocab.json"));
    }

    [Test]
    public void VocabAndMergesOfAnotherClassAreRefused()
    {
        File.WriteAllText(Path.Combine(_dir, "vocab.json"), """{"a":0,"b":1,"ab":2}""");
        File.WriteAllText(Path.Combine(_dir, "merges.txt"), "#version: 0.2\na b\n");
        File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"), """{"tokenizer_class":"Qwen2Tokenizer"}""");
        var e = Assert.Throws<InvalidDataFormatException>(() => HfTokenizer.FromFolder(_dir))!;
        Assert.That(e.Field, Is.EqualTo("tokenizer_class"));
        File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"), """{"tokenizer_class":"GPT2Tokenizer"}""");
        Assert.That(HfTokenizer.FromFolder(_dir).Encode("abba"), Is.EqualTo(new[] { 2, 1, 0 }));
    }

    [Test]
    public void MergesLineWithoutTwoTokensNamesTheLine()
    {
        File.WriteAllText(Path.Combine(_dir, "vocab.json"), """{"a":0,"b":1,"ab":2}""");
        File.WriteAllText(Path.Combine(_dir, "merges.txt"), "#version: 0.2\na b\nab\n");
        var e = Assert.Throws<InvalidDataFormatException>(() => HfTokenizer.FromFolder(_dir))!;
        Assert.That((e.File, e.Field), Is.EqualTo((Path.Combine(_dir, "merges.txt"), "line 3")));
    }

    private const string Tiny = """
        {"added_tokens":[],"normalizer":null,"pre_tokenizer":null,"post_processor":null,"decoder":null,
         "model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}}
        """;

    [TestCase("\"model\":{\"type\":\"BPE\"", "\"model\":{\"type\":\"WordPiece\"", "model.type", "WordPiece")]
    [TestCase("\"normalizer\":null", "\"normalizer\":{\"type\":\"Lowercase\"}", "normalizer.type", "Lowercase")]
    [TestCase("\"pre_tokenizer\":null", "\"pre_tokenizer\":{\"type\":\"Whitespace\"}", "pre_tokenizer.type",
        "Whitespace")]
    [TestCase("\"pre_tokenizer\":null",
        "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Digits\"}," +
        "{\"type\":\"BertPreTokenizer\"}]}", "pre_tokenizer.pretokenizers[1].type", "BertPreTokenizer")]
    [TestCase("\"pre_tokenizer\":null",
        "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"ByteLevel\"},{\"type\":\"Digits\"}]}",
        "pre_tokenizer.pretokenizers[0].type", "last")]
    [TestCase("\"decoder\":null", "\"decoder\":{\"type\":\"WordPiece\"}", "decoder.type", "WordPiece")]
    [TestCase("\"post_processor\":null", "\"post_processor\":{\"type\":\"BertProcessing\"}", "post_processor.type",
        "BertProcessing")]
    [TestCase("[\"a b\"]", "[\"a c\"]", "model.merges[0]", "\"c\"")]
    [TestCase("[\"a b\"]", "[\"a  b\"]", "model.merges[0]", "one space")]
    [TestCase("\"type\":\"BPE\"", "\"type\":\"BPE\",\"dropout\":0.1", "model.dropout", "random")]
    [TestCase("\"type\":\"BPE\"", "\"type\":\"BPE\",\"unk_token\":\"<unk>\"", "model.unk_token", "<unk>")]
    [TestCase("\"type\":\"BPE\"", "\"type\":\"BPE\",\"continuing_subword_prefix\":\"##\"",
        "model.continuing_subword_prefix", "##")]
    [TestCase("\"pre_tokenizer\":null",
        "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a++\"},\"behavior\":\"Isolated\"}",
        "pre_tokenizer.pattern", "regex")]
    [TestCase("\"pre_tokenizer\":null",
        "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},\"behavior\":\"Sideways\"}",
        "pre_tokenizer.behavior", "Sideways")]
    [TestCase("\"post_processor\":null",
        "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<x>\"}}," +
        "{\"Sequence\":{\"id\":\"A\"}}]}", "post_processor.special_tokens.<x>", "<x>")]
    [TestCase("\"vocab\":{\"a\":0", "\"vocab\":{\"a\":-1", "model.vocab.a", "integer")]
    public void UnsupportedOrBrokenFilesNameTheFileAndField(string find, string replace, string field, string mentions)
    {
        string path = Path.Combine(_dir, "tokenizer.json");
        Assert.That(Tiny, Does.Contain(find));
        File.WriteAllText(path, Tiny.Replace(find, replace));
        var e = Assert.Throws<InvalidDataFormatException>(() => HfTokenizer.FromTokenizerJson(path))!;
        Assert.That((e.File, e.Field), Is.EqualTo((path, field)));
        Assert.That(e.Message, Does.StartWith($"{path}: {field}: ").And.Contain(mentions).And.Not.Contain("\n"));
    }

    [Test]
    public void TinyFileWorksAsWritten()
    {
        string path = Path.Combine(_dir, "tokenizer.json");
        File.WriteAllText(path, Tiny);
        var t = HfTokenizer.FromTokenizerJson(path);
        Assert.That(t.Encode("abab"), Is.EqualTo(new[] { 2, 2 }));
        Assert.That(t.Decode([2, 0]), Is.EqualTo("ab a"), "without a decoder HF joins the tokens with spaces");
    }

    [Test]
    public void LoneSurrogatesAreReadAsReplacementCharacters()
    {
        var t = TokenizerFixtures.Tokenizer("gpt2");
        Assert.That(t.Encode("a\uD800b"), Is.EqualTo(t.Encode("a\uFFFDb")));
        Assert.That(t.Encode("\uDC00"), Is.EqualTo(t.Encode("\uFFFD")));
    }

    [Test]
    public void EncodingFromManyThreadsGivesTheSameIds()
    {
        var t = TokenizerFixtures.Tokenizer("llama3");
        var texts = TokenizerFixtures.Cases("llama3");
        var results = new int[texts.Count][];
        Parallel.For(0, texts.Count * 4, i => results[i % texts.Count] = t.Encode(texts[i % texts.Count].Text));
        for (int i = 0; i < texts.Count; i++) Assert.That(results[i], Is.EqualTo(texts[i].Ids));
    }

    [Test]
    public void LongWordsBeyondTheCacheStillMatchShortOnes()
    {
        // A 100,000-letter word is one pre-token: it exercises the heap merge on a long symbol list.
        var t = TokenizerFixtures.Tokenizer("gpt2");
        string word = string.Concat(Enumerable.Repeat("ab", 50_000));
        int[] ids = t.Encode(word);
        Assert.That(t.Decode(ids), Is.EqualTo(word));
        // GPT-2 merges "a b" but has no "ab ab": every pair merges, nothing more.
        Assert.That(t.TokenToId("abab"), Is.Null);
        Assert.That(ids, Has.Length.EqualTo(50_000).And.All.EqualTo(t.TokenToId("ab")));
    }
}
