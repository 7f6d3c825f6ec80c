using LoRA.Managed.Data;

namespace LoRA.Managed.Tests.Data;

public class MnistDatasetTests
{
    private static MnistDataset Synthetic(int count, int imageSize = 3) =>
        new(IdxTestFiles.Pixels(count, imageSize), Enumerable.Range(0, count).Select(i => (byte)(i % 10)).ToArray(),
            imageSize);

    [Test]
    public void FilterKeepsOnlyTheDigitsInOrder()
    {
        MnistDataset all = Synthetic(25);
        MnistDataset eightNine = all.Filter(DigitSet.Parse("8,9"));

        Assert.That(eightNine.Count, Is.EqualTo(4)); // samples 8, 9, 18, 19
        int[] expectedIndices = Enumerable.Range(0, 25).Where(i => i % 10 is 8 or 9).ToArray();
        Assert.That(eightNine.Count, Is.EqualTo(expectedIndices.Length));
        for (int j = 0; j < expectedIndices.Length; j++)
        {
            Assert.That(eightNine.Label(j), Is.EqualTo(all.Label(expectedIndices[j])));
            Assert.That(eightNine.Image(j).ToArray(), Is.EqualTo(all.Image(expectedIndices[j]).ToArray()));
        }
        Assert.That(all.Filter(DigitSet.Parse("0-7")).Count + eightNine.Count, Is.EqualTo(all.Count));
    }

    [Test]
    public void RawAndNormalisedPixels()
    {
        var dataset = new MnistDataset([0, 51, 128, 255], [7], 4);
        var raw = new float[4];
        dataset.CopyImage(0, raw);
        Assert.That(raw, Is.EqualTo(new[] { 0f, 51f, 128f, 255f }));

        var normalised = new float[4];
        dataset.WithScale(PixelScale.MinusOneToOne).CopyImage(0, normalised);
        // (x/255 − 0.5)/0.5 in float, as torchvision's ToTensor + Normalize((0.5,), (0.5,)).
        Assert.That(normalised, Is.EqualTo(new[] { -1f, (51f / 255f - 0.5f) / 0.5f, (128f / 255f - 0.5f) / 0.5f, 1f }));
    }

    /// <summary>The vectorised copy (16 pixels at a time, then a scalar tail) gives the scalar formula's bits for every
    /// byte value, in every position of a vector, at lengths with and without a tail.</summary>
    [TestCase(784), TestCase(263), TestCase(15), TestCase(16)]
    public void EveryByteValueCopiesAsTheScalarFormulaBitForBit(int size)
    {
        var images = new byte[2 * size];
        for (int i = 0; i < images.Length; i++) images[i] = (byte)(i * 7 + i / 256);
        var dataset = new MnistDataset(images, [1, 2], size);
        foreach (PixelScale scale in Enum.GetValues<PixelScale>())
            for (int image = 0; image < 2; image++)
            {
                var copied = new float[size];
                dataset.WithScale(scale).CopyImage(image, copied);
                for (int i = 0; i < size; i++)
                {
                    byte b = images[image * size + i];
                    float expected = scale == PixelScale.Raw ? b : (b / 255f - 0.5f) / 0.5f;
                    Assert.That(BitConverter.SingleToInt32Bits(copied[i]),
                        Is.EqualTo(BitConverter.SingleToInt32Bits(expected)), $"{scale}, pixel {i} = {b}");
                }
            }
        Assert.That(images.Take(2 * Math.Min(size, 256)).Distinct().Count(), Is.GreaterThan(Math.Min(size, 200)));
    }

    [Test]
    public void LoadChecksImagesAgainstLabels()
    {
        using var files = new IdxTestFiles();
        string images = files.Write("img", IdxTestFiles.ImagesFile(3, 2, 2));
        string labels = files.Write("lbl", IdxTestFiles.LabelsFile([1, 2]));
        var e = Assert.Throws<IdxFormatException>(() => MnistDataset.Load(images, labels))!;
        Assert.That(e.Message, Does.Contain("2 labels").And.Contain("3 images"));
    }

    [Test]
    public void LoadsLocatedFilesGzipOrRaw([Values(false, true)] bool gzip)
    {
        using var files = new IdxTestFiles();
        files.WriteMnist(files.Directory, gzip);
        MnistFiles found = MnistFiles.TryFind(files.Directory)!;
        Assert.That(found, Is.Not.Null);
        MnistDataset train = MnistDataset.Load(found, train: true);
        MnistDataset test = MnistDataset.Load(found, train: false);
        Assert.That((train.Count, train.ImageSize, test.Count), Is.EqualTo((20, 4, 10)));
        Assert.That(test.Label(0), Is.EqualTo(9));
    }

    [Test]
    public void PrefetchingAnImageChangesNothingAndChecksTheIndex()
    {
        MnistDataset dataset = Synthetic(5, imageSize: 200).Filter(DigitSet.Parse("0-9"));
        float[] before = new float[200], after = new float[200];
        dataset.CopyImage(4, before);
        dataset.PrefetchImage(4);
        dataset.CopyImage(4, after);
        Assert.That(after, Is.EqualTo(before));
        Assert.That(() => dataset.PrefetchImage(5),
            Throws.InstanceOf<ArgumentOutOfRangeException>().Or.InstanceOf<IndexOutOfRangeException>());
    }
}

