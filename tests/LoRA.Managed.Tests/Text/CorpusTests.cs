using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using LoRA.Managed.Data;
using LoRA.Managed.Text;

namespace LoRA.Managed.Tests.Text;

public class CorpusTests
{
    private string _root = "";

    [SetUp]
    public void CreateRoot() => _root = Path.Combine(Path.GetTempPath(), $"lm-corpora-{Guid.NewGuid():N}");

    [TearDown]
    public void DeleteRoot()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    private static string Sha(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));

    [Test]
    public void FortuneSeparatorsBecomeBlankLinesAndOverstrikingResolves()
    {
        byte[] a = Encoding.UTF8.GetBytes("One.\n\t-- Someone\n%\nB\bBold and _\bu_\bn\n%\n");
        byte[] b = Encoding.UTF8.GetBytes("Caf\u00e9\r\n%\n");
        Assert.That(CorpusText.Fortunes(new[] { a, b }),
            Is.EqualTo("One.\n\t-- Someone\n\nBold and un\n\n\nCaf\u00e9\n\n\n"));
    }

    [Test]
    public void DictionaryTextStartsAtTheMarker()
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
            gz.Write(Encoding.UTF8.GetBytes("00-database-short\nheader\nSTART here.\nABC, n. A word.\n"));
        Assert.That(CorpusText.DictFromMarker(ms.ToArray(), "START"), Is.EqualTo("START here.\nABC, n. A word.\n"));
        Assert.Throws<InvalidDataException>(() => CorpusText.DictFromMarker(ms.ToArray(), "MISSING"));
    }

    private static CorpusSpec FakeSpec(byte[] content) => new(
        "fake", "a test corpus", "lora-managed-no-such-package", "0.0-0", "test",
        new[] { new CorpusFile("usr/share/fake/text.txt", Sha(content)) },
        files => Encoding.UTF8.GetString(files[0]));

    [Test]
    public void LoadsAVerifiedCachedCorpusWithoutFetching()
    {
        byte[] content = Encoding.UTF8.GetBytes("cached text");
        var spec = FakeSpec(content);
        var fetcher = new CorpusFetcher(_root);
        Directory.CreateDirectory(fetcher.DirectoryFor(spec));
        File.WriteAllBytes(Path.Combine(fetcher.DirectoryFor(spec), "text.txt"), content);
        Assert.That(fetcher.IsCached(spec), Is.True);
        Assert.That(fetcher.Load(spec), Is.EqualTo("cached text"));
    }

    [Test]
    public void ACorruptFileThatCannotBeRefetchedGivesInstructions()
    {
        var spec = FakeSpec(Encoding.UTF8.GetBytes("the real text"));
        var fetcher = new CorpusFetcher(_root);
        Directory.CreateDirectory(fetcher.DirectoryFor(spec));
        File.WriteAllText(Path.Combine(fetcher.DirectoryFor(spec), "text.txt"), "tampered");
        Assert.That(fetcher.IsCached(spec), Is.False);
        var ex = Assert.Throws<CorpusUnavailableException>(() => fetcher.Load(spec));
        Assert.That(ex!.Message, Does.Contain("apt-get download lora-managed-no-such-package=0.0-0")
            .And.Contain(Path.Combine(fetcher.DirectoryFor(spec), "text.txt"))
            .And.Contain(spec.Files[0].Sha256)
            .And.Contain(DataCache.DataVariable));
        Assert.That(Directory.GetDirectories(_root, ".fetch-*"), Is.Empty, "the temporary folder is removed");
    }

    [Test]
    public void TheDataVariableMovesTheCache()
    {
        string? saved = Environment.GetEnvironmentVariable(DataCache.DataVariable);
        try
        {
            Environment.SetEnvironmentVariable(DataCache.DataVariable, _root);
            Assert.That(new CorpusFetcher().Root, Is.EqualTo(Path.Combine(_root, "corpora")));
        }
        finally { Environment.SetEnvironmentVariable(DataCache.DataVariable, saved); }
    }

    [Test, Explicit("Downloads the two Debian packages (about 1 MB) into a temporary cache.")]
    public void FetchesBothRealCorporaAndTheyDiffer()
    {
        var fetcher = new CorpusFetcher(_root);
        string a = fetcher.Load(Corpora.Fortunes), b = fetcher.Load(Corpora.DevilsDictionary);
        TestContext.Out.WriteLine($"fortunes {a.Length} chars, devil's dictionary {b.Length} chars");
        Assert.That(a.Length, Is.GreaterThan(300_000));
        Assert.That(b.Length, Is.GreaterThan(100_000));
        Assert.That(b, Does.StartWith("_The Devil's Dictionary_ was begun"));
        Assert.That(fetcher.IsCached(Corpora.Fortunes) && fetcher.IsCached(Corpora.DevilsDictionary), Is.True);
    }
}
