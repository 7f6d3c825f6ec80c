using LoRA.Managed.Data;

namespace LoRA.Managed.Tests.Data;

/// <summary>Filtered datasets are index views over their source: same samples, same order, no copy.</summary>
public class MnistDatasetViewTests
{
    private static MnistDataset Source()
    {
        // 20 two-pixel images whose pixels encode their index, labels 0..9 twice.
        var images = new byte[40];
        var labels = new byte[20];
        for (int i = 0; i < 20; i++)
        {
            images[2 * i] = (byte)i;
            images[2 * i + 1] = (byte)(100 + i);
            labels[i] = (byte)(i % 10);
        }
        return new MnistDataset(images, labels, 2);
    }

    [Test]
    public void FilterKeepsMatchingSamplesInOrder()
    {
        MnistDataset view = Source().Filter(DigitSet.Parse("8,9"));
        Assert.That(view.Count, Is.EqualTo(4));
        Assert.That(Enumerable.Range(0, 4).Select(view.Label), Is.EqualTo(new[] { 8, 9, 8, 9 }));
        Assert.That(Enumerable.Range(0, 4).Select(i => (int)view.Image(i)[0]), Is.EqualTo(new[] { 8, 9, 18, 19 }));
        Assert.That(view.Labels.ToArray(), Is.EqualTo(new byte[] { 8, 9, 8, 9 }));
        Assert.That(view.LabelCounts(), Is.EqualTo(new[] { 0, 0, 0, 0, 0, 0, 0, 0, 2, 2 }));
    }

    [Test]
    public void FilterOfAFilterAndWithScaleCompose()
    {
        MnistDataset view = Source().Filter(DigitSet.Parse("0-7")).Filter(DigitSet.Parse("3,5"))
            .WithScale(PixelScale.MinusOneToOne);
        Assert.That(Enumerable.Range(0, view.Count).Select(i => (int)view.Image(i)[1]),
            Is.EqualTo(new[] { 103, 105, 113, 115 }));
        var floats = new float[2];
        view.CopyImage(3, floats);
        Assert.That(floats[0], Is.EqualTo((15 / 255f - 0.5f) / 0.5f));
    }
}
