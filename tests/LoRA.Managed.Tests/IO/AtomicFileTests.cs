using LoRA.Managed.IO;

namespace LoRA.Managed.Tests.IO;

/// <summary>Atomic replacement: a write that fails half-way leaves the old file and no temporary behind.</summary>
public class AtomicFileTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => Directory.CreateDirectory(_dir = Path.Combine(TestContext.CurrentContext.WorkDirectory, $"atomic-{Guid.NewGuid():N}"));

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
}
