using LoRA.Managed.Text;

namespace LoRA.Managed.Tests.Text;

public class CharTokenizerTests
{
    [Test]
    public void VocabularyIsSortedWithUnknownFirstAndRoundTrips()
    {
        var tok = CharTokenizer.FromText("hello, world\n");
        Assert.That(tok.Vocabulary, Is.EqualTo("\uFFFD\n ,dehlorw".ToCharArray()));
        Assert.That(tok.UnknownId, Is.EqualTo(0));
        int[] ids = tok.Encode("hello");
        Assert.That(ids, Is.EqualTo(new[] { 6, 5, 7, 7, 8 }));
        Assert.That(tok.Decode(ids), Is.EqualTo("hello"));
    }

    [Test]
    public void UnknownCharactersMapToTheUnknownIdOrFailClearly()
    {
        var tok = CharTokenizer.FromText("abc");
        Assert.That(tok.Encode("abz"), Is.EqualTo(new[] { 1, 2, 0 }));
        Assert.That(tok.CountUnknown("zzab"), Is.EqualTo(2));
        Assert.That(tok.Decode(tok.Encode("az")), Is.EqualTo("a\uFFFD"));
        var strict = CharTokenizer.FromText("abc", addUnknown: false);
        var ex = Assert.Throws<ArgumentException>(() => strict.Encode("abz"));
        Assert.That(ex!.Message, Does.Contain("index 2"));
        Assert.Throws<ArgumentOutOfRangeException>(() => strict.Decode(new[] { 3 }));
    }

    [Test]
    public void FromCorporaCoversEveryText()
    {
        var tok = CharTokenizer.FromCorpora(new[] { "ab", "bc" });
        Assert.That(tok.VocabSize, Is.EqualTo(4));
        Assert.That(tok.CountUnknown("abc"), Is.EqualTo(0));
    }

    [Test]
    public void SaveAndLoadRoundTripIncludingEscapes()
    {
        var tok = CharTokenizer.FromText("a\"\\\n\té ");
        string path = Path.Combine(Path.GetTempPath(), $"lm-tok-{Guid.NewGuid():N}.json");
        try
        {
            tok.Save(path);
            var back = CharTokenizer.Load(path);
            Assert.That(back.Vocabulary, Is.EqualTo(tok.Vocabulary));
            Assert.That(back.UnknownId, Is.EqualTo(tok.UnknownId));
            Assert.That(Directory.GetFiles(Path.GetDirectoryName(path)!, Path.GetFileName(path) + ".tmp-*"), Is.Empty);
        }
        finally { File.Delete(path); }
        var strict = CharTokenizer.FromText("xy", addUnknown: false);
        Assert.That(CharTokenizer.FromJson(strict.ToJson()).UnknownId, Is.Null);
    }

    [TestCase("{\"type\":\"bpe\",\"vocab\":[\"a\"]}", "'type'")]
    [TestCase("{\"type\":\"char\",\"vocab\":[\"ab\"]}", "'vocab'[0]")]
    [TestCase("{\"type\":\"char\",\"vocab\":[\"a\",\"a\"]}", "twice")]
    [TestCase("{\"type\":\"char\",\"unk_id\":3,\"vocab\":[\"a\"]}", "'unk_id'")]
    [TestCase("not json", "not valid JSON")]
    public void MalformedJsonNamesTheField(string json, string expected)
    {
        var ex = Assert.Throws<FormatException>(() => CharTokenizer.FromJson(json, "tok.json"));
        Assert.That(ex!.Message, Does.Contain("tok.json").And.Contain(expected));
    }
}
