using LoRA.Managed.Data;

namespace LoRA.Managed.Tests.Data;

public class IdxReaderTests
{
    private IdxTestFiles _files = null!;

    [SetUp] public void SetUp() => _files = new IdxTestFiles();
    [TearDown] public void TearDown() => _files.Dispose();

    [Test]
    public void ReadsRawImagesAndLabels()
    {
        string images = _files.Write("img", IdxTestFiles.ImagesFile(5, 3, 4));
        string labels = _files.Write("lbl", IdxTestFiles.LabelsFile([3, 1, 4, 1, 5]));

        IdxImages read = IdxReader.ReadImages(images);
        Assert.That((read.Count, read.Rows, read.Columns), Is.EqualTo((5, 3, 4)));
        Assert.That(read.Pixels, Is.EqualTo(IdxTestFiles.Pixels(5, 12)));
        Assert.That(IdxReader.ReadLabels(labels), Is.EqualTo(new byte[] { 3, 1, 4, 1, 5 }));
        Assert.That(IdxReader.IsGzip(images), Is.False);
    }

    [Test]
    public void ReadsGzipDetectedByMagicNotName()
    {
        // Named without .gz on purpose: detection must look at the bytes 1f 8b.
        string images = _files.Write("plain-name", IdxTestFiles.Gzip(IdxTestFiles.ImagesFile(6, 2, 5)));
        string labels = _files.Write("labels.gz", IdxTestFiles.Gzip(IdxTestFiles.LabelsFile([9, 8, 7, 6, 5, 4])));

        Assert.That(IdxReader.IsGzip(images), Is.True);
        IdxImages read = IdxReader.ReadImages(images);
        Assert.That((read.Count, read.Rows, read.Columns), Is.EqualTo((6, 2, 5)));
        Assert.That(read.Pixels, Is.EqualTo(IdxTestFiles.Pixels(6, 10)));
        Assert.That(IdxReader.ReadLabels(labels), Is.EqualTo(new byte[] { 9, 8, 7, 6, 5, 4 }));
    }

    [Test]
    public void TruncatedDataNamesItemCount([Values(false, true)] bool gzip)
    {
        byte[] whole = IdxTestFiles.ImagesFile(4, 3, 3);
        byte[] cut = whole[..(whole.Length - 5)];
        string path = _files.Write("cut", gzip ? IdxTestFiles.Gzip(cut) : cut);

        var e = Assert.Throws<IdxFormatException>(() => IdxReader.ReadImages(path))!;
        Assert.That(e.Field, Is.EqualTo("item count"));
        Assert.That(e.Message, Does.Contain(path).And.Contain("4×3×3").And.Contain("31"));
    }

    [Test]
    public void TruncatedHeaderNamesLength()
    {
        string path = _files.Write("short", IdxTestFiles.ImagesFile(1, 1, 1)[..10]);
        var e = Assert.Throws<IdxFormatException>(() => IdxReader.ReadImages(path))!;
        Assert.That(e.Field, Is.EqualTo("length"));
        Assert.That(e.Message, Does.Contain("16-byte header"));
    }

    [Test]
    public void WrongMagicIsRejected()
    {
        string labelsAsImages = _files.Write("labels", IdxTestFiles.LabelsFile([1, 2]));
        var e = Assert.Throws<IdxFormatException>(() => IdxReader.ReadImages(labelsAsImages))!;
        Assert.That(e.Field, Is.EqualTo("dimension count"));
        Assert.That(e.Message, Does.Contain("2051").And.Contain("2049"));

        string text = _files.Write("text", "hello world, not idx"u8.ToArray());
        e = Assert.Throws<IdxFormatException>(() => IdxReader.ReadLabels(text))!;
        Assert.That(e.Field, Is.EqualTo("magic"));

        string floats = _files.Write("floats", IdxTestFiles.Idx(0x00000D01, [2], new byte[8]));
        e = Assert.Throws<IdxFormatException>(() => IdxReader.ReadLabels(floats))!;
        Assert.That(e.Field, Is.EqualTo("data type"));
    }

    [Test]
    public void CountsExceedingTheLengthFailBeforeAllocating()
    {
        // 2³¹−1 images of 2³¹−1 × 2³¹−1 pixels: allocating from the header would fail with OutOfMemory
        // or overflow; the check against the 3-byte payload must come first.
        string huge = _files.Write("huge",
            IdxTestFiles.Idx(2051, [int.MaxValue, int.MaxValue, int.MaxValue], [1, 2, 3]));
        var e = Assert.Throws<IdxFormatException>(() => IdxReader.ReadImages(huge))!;
        Assert.That(e.Field, Is.EqualTo("item count"));
        Assert.That(e.Message, Does.Contain("only 3"));

        string labels = _files.Write("many-labels", IdxTestFiles.Idx(2049, [60000], new byte[100]));
        e = Assert.Throws<IdxFormatException>(() => IdxReader.ReadLabels(labels))!;
        Assert.That(e.Field, Is.EqualTo("item count"));

        string negative = _files.Write("neg", IdxTestFiles.Idx(2049, [-1], new byte[4]));
        e = Assert.Throws<IdxFormatException>(() => IdxReader.ReadLabels(negative))!;
        Assert.That(e.Field, Is.EqualTo("item count"));
    }

    [Test]
    public void TrailingBytesNameLength()
    {
        byte[] whole = IdxTestFiles.LabelsFile([1, 2, 3]);
        string path = _files.Write("long", [.. whole, 0, 0]);
        var e = Assert.Throws<IdxFormatException>(() => IdxReader.ReadLabels(path))!;
        Assert.That(e.Field, Is.EqualTo("length"));
        Assert.That(e.Message, Does.Contain("2 extra"));
    }

    [Test]
    public void CorruptGzipIsAFormatError()
    {
        byte[] gz = IdxTestFiles.Gzip(IdxTestFiles.LabelsFile(new byte[1000]));
        for (int i = 12; i < gz.Length - 8; i++) gz[i] ^= 0x5a;
        string path = _files.Write("bad.gz", gz);
        Assert.Throws<IdxFormatException>(() => IdxReader.ReadLabels(path));
    }

    [Test]
    public void MissingFileIsFileNotFound()
    {
        var e = Assert.Throws<FileNotFoundException>(() => IdxReader.ReadImages(_files.PathOf("nope")))!;
        Assert.That(e.Message, Does.Contain("nope"));
    }
}
