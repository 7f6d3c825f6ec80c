using LoRA.Managed.IO;

namespace LoRA.Managed.Tests.IO;

/// <summary>Atomic replacement: a write that fails half-way leaves the old file and no temporary behind.</summary>
public class AtomicFileTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() =>
        Directory.CreateDirectory(_dir = Path.Combine(TestContext.CurrentContext.WorkDirectory,
            $"atomic-{Guid.NewGuid():N}"));

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void FailureMidWriteLeavesThePreviousFileIntact()
    {
        string path = Path.Combine(_dir, "model.bin");
        AtomicFile.WriteAllBytes(path, new byte[] { 1, 2, 3 });
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s =>
        {
            s.Write(new byte[1000]);
            throw new InvalidOperationException("disk on fire");
        }));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(new byte[] { 1, 2, 3 }));
        Assert.That(Directory.GetFiles(_dir), Is.EqualTo(new[] { path }), "no temporary file left");
    }

    [Test]
    public void SuccessfulWriteReplacesTheFile()
    {
        string path = Path.Combine(_dir, "sub", "x.bin");
        AtomicFile.WriteAllBytes(path, new byte[] { 9 });
        AtomicFile.Write(path, s => s.Write(new byte[] { 4, 5 }));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(new byte[] { 4, 5 }));
    }

    [Test]
    public void StreamFailingHalfWayLeavesThePreviousFileIntact()
    {
        string path = Path.Combine(_dir, "model.bin");
        AtomicFile.WriteAllBytes(path, new byte[] { 1, 2, 3 });
        var ex = Assert.Throws<IOException>(() => AtomicFile.Write(path, s =>
        {
            var failing = new FailingStream(s, failAfter: 5000);
            failing.Write(new byte[4096]);
            failing.Write(new byte[4096]);   // crosses the limit: the "disk" fails mid-write
        }));
        Assert.That(ex!.Message, Does.Contain("device full"));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(new byte[] { 1, 2, 3 }));
        Assert.That(Directory.GetFiles(_dir), Is.EqualTo(new[] { path }), "no temporary file left");
    }

    [Test]
    public void WriteAllFailingOnTheSecondFileLeavesBothOldFiles()
    {
        string a = Path.Combine(_dir, "a.bin"), b = Path.Combine(_dir, "b.bin");
        AtomicFile.WriteAll([(a, s => s.WriteByte(1)), (b, s => s.WriteByte(2))]);
        Assert.Throws<InvalidOperationException>(() => AtomicFile.WriteAll(
        [
            (a, s => s.Write(new byte[] { 10, 10 })),
            (b, s => { s.WriteByte(20); throw new InvalidOperationException("second write fails"); }),
        ]));
        Assert.That(File.ReadAllBytes(a), Is.EqualTo(new byte[] { 1 }),
            "the first file is not replaced while the second failed");
        Assert.That(File.ReadAllBytes(b), Is.EqualTo(new byte[] { 2 }));
        Assert.That(Directory.GetFiles(_dir).Order(), Is.EqualTo(new[] { a, b }), "no temporary file left");
    }

    [Test]
    public void WriteAllFailingOnTheSecondRenamePutsTheFirstBack()
    {
        // A directory where the second file should go makes its rename fail after the first file was already replaced.
        string a = Path.Combine(_dir, "a.bin"), b = Path.Combine(_dir, "b.bin"), fresh = Path.Combine(_dir, "new.bin");
        File.WriteAllBytes(a, new byte[] { 1 });
        Directory.CreateDirectory(b);
        Assert.Throws(Is.InstanceOf<IOException>().Or.InstanceOf<UnauthorizedAccessException>(),
            () => AtomicFile.WriteAll(
        [
            (a, s => s.WriteByte(10)),
            (fresh, s => s.WriteByte(30)),
            (b, s => s.WriteByte(20)),
        ]));
        Assert.That(File.ReadAllBytes(a), Is.EqualTo(new byte[] { 1 }),
            "the replaced file is restored from its backup");
        Assert.That(File.Exists(fresh), Is.False, "a file that did not exist before is removed again");
        Assert.That(Directory.GetFiles(_dir), Is.EqualTo(new[] { a }), "no temporary or backup file left");
    }

    [Test]
    public void WriteAllReplacesEveryFile()
    {
        string a = Path.Combine(_dir, "a.bin"), b = Path.Combine(_dir, "sub", "b.bin");
        File.WriteAllBytes(a, new byte[] { 1 });
        AtomicFile.WriteAll([(a, s => s.WriteByte(10)), (b, s => s.WriteByte(20))]);
        Assert.That(File.ReadAllBytes(a), Is.EqualTo(new byte[] { 10 }));
        Assert.That(File.ReadAllBytes(b), Is.EqualTo(new byte[] { 20 }));
        Assert.That(Directory.GetFiles(_dir), Is.EqualTo(new[] { a }), "no backup left");
        Assert.Throws<ArgumentException>(() => AtomicFile.WriteAll([(a, _ => { }), (a, _ => { })]));
    }
}
