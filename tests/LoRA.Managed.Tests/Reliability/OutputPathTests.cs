using LoRA.Managed.IO;
using LoRA.Managed.Tests.Data;

namespace LoRA.Managed.Tests.Reliability;

/// <summary>Issue 18: saves never replace a symbolic link or a special file, and output paths are checked up
/// front.</summary>
public class OutputPathTests
{
    private IdxTestFiles _files = null!;

    [SetUp]
    public void SetUp() => _files = new IdxTestFiles();

    [TearDown]
    public void TearDown() => _files.Dispose();

    [Test]
    public void AtomicFileRefusesToReplaceASymlinkAndLeavesItsTargetAlone()
    {
        string target = _files.Write("real", [1, 2, 3]);
        string link = _files.PathOf("link");
        File.CreateSymbolicLink(link, target);
        var ex = Assert.Throws<IOException>(() => AtomicFile.WriteAllBytes(link, [9]));
        Assert.That(ex!.Message, Does.StartWith(link).And.Contain("symbolic link"));
        Assert.That(File.ReadAllBytes(target), Is.EqualTo(new byte[] { 1, 2, 3 }));
        Assert.That(new FileInfo(link).LinkTarget, Is.EqualTo(target));
        Assert.That(Directory.GetFiles(_files.Directory, "*.tmp"), Is.Empty);
    }

    [Test]
    public void AtomicFileRefusesToReplaceAFifo()
    {
        string fifo = SpecialFiles.Fifo(_files.PathOf("fifo"));
        var ex = Assert.Throws<IOException>(() => AtomicFile.WriteAllBytes(fifo, [9]));
        Assert.That(ex!.Message, Does.Contain("not a regular file"));
        Assert.That(new FileInfo(fifo).Length, Is.Zero);
    }

    [Test]
    public void WritableFileChecksNameEachProblem()
    {
        string Message(string path) => Assert.Throws(Is.InstanceOf<IOException>(), ()
            => OutputPath.RequireWritableFile(path))!.Message;
        Assert.That(Message(""), Does.Contain("empty"));
        Assert.That(Message(_files.Directory), Does.Contain("is a directory"));
        Assert.That(Message(_files.PathOf("nope/x.bin")), Does.Contain("does not exist"));
        Assert.That(Message(_files.PathOf(new string('a', 220))), Does.Contain("the file name is 220 " +
            "bytes").And.Contain("258"));
        Assert.DoesNotThrow(() => OutputPath.RequireWritableFile(_files.PathOf(new string('a',
            OutputPath.MaxNameBytes - OutputPath.TemporarySuffixBytes))));
        Assert.That(Directory.GetFileSystemEntries(_files.Directory), Is.Empty, "the writability probe leaves " +
            "nothing behind");
    }

    [Test]
    public void WritableDirectoryAcceptsNewFoldersUnderAnExistingAncestorOnlyWhenAskedTo()
    {
        string deep = _files.PathOf("a/b/c");
        Assert.DoesNotThrow(() => OutputPath.RequireWritableDirectory(deep, createParents: true));
        Assert.Throws<DirectoryNotFoundException>(() => OutputPath.RequireWritableDirectory(deep));
        Assert.DoesNotThrow(() => OutputPath.RequireWritableDirectory(_files.PathOf("a")));
        string file = _files.Write("f", [1]);
        Assert.That(Assert.Throws<IOException>(() => OutputPath.RequireWritableDirectory(Path.Combine(file, "x"),
            createParents: true))!.Message, Does.Contain("is a file"));
        Assert.That(Directory.Exists(_files.PathOf("a")), Is.False, "checking creates nothing");
    }
}
