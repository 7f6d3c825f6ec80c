using LoRA.Managed.Data;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Data;

public class DataLoaderTests
{
    // Each image's first pixel is its index (mod 256), so a batch tells which samples it holds.
    private static MnistDataset Indexed(int count)
    {
        var pixels = new byte[count * 2];
        for (int i = 0; i < count; i++) { pixels[2 * i] = (byte)i; pixels[2 * i + 1] = (byte)(255 - i); }
        return new MnistDataset(pixels, Enumerable.Range(0, count).Select(i => (byte)(i % 10)).ToArray(), 2);
    }

    private static List<int[]> Epoch(DataLoader loader) =>
        loader.Select(b => b.Indices.ToArray()).ToList();

    [TestCase(10, 4, new[] { 4, 4, 2 })]
    [TestCase(12, 4, new[] { 4, 4, 4 })]
    [TestCase(3, 8, new[] { 3 })]
    [TestCase(1, 1, new[] { 1 })]
    [TestCase(7, 1, new[] { 1, 1, 1, 1, 1, 1, 1 })]
    public void BatchSizesKeepThePartialLastBatch(int count, int batchSize, int[] sizes)
    {
        var loader = new DataLoader(Indexed(count), batchSize);
        Assert.That(loader.BatchCount, Is.EqualTo(sizes.Length));
        var seen = loader.Select(b => (b.Size, b.Images.Shape[0], b.Images.Shape[1], b.Labels.Length)).ToList();
        Assert.That(seen, Is.EqualTo(sizes.Select(s => (s, s, 2, s)).ToList()));
    }

    [Test]
    public void BatchesHoldTheRightImagesAndLabels()
    {
        var loader = new DataLoader(Indexed(10), 4, shuffle: true, generator: new TorchGenerator(3));
        foreach (Batch batch in loader)
        {
            for (int i = 0; i < batch.Size; i++)
            {
                int sample = batch.Indices[i];
                Assert.That(batch.Images[i, 0], Is.EqualTo((float)sample));
                Assert.That(batch.Images[i, 1], Is.EqualTo(255f - sample));
                Assert.That(batch.Labels[i], Is.EqualTo(sample % 10));
            }
        }
    }

    [Test]
    public void BatchBuffersAreReused()
    {
        var loader = new DataLoader(Indexed(10), 4);
        var first = loader.ToList(); // the same objects come back, refilled
        Assert.That(first[0], Is.SameAs(first[1]));
        Assert.That(first[2], Is.Not.SameAs(first[0]));
        var second = loader.ToList();
        Assert.That(second[0], Is.SameAs(first[0]));
        Assert.That(second[2].Images, Is.SameAs(first[2].Images));
    }

    [Test]
    public void EverySampleOncePerEpoch()
    {
        var loader = new DataLoader(Indexed(103), 10, shuffle: true, generator: new TorchGenerator(0));
        for (int epoch = 0; epoch < 3; epoch++)
        {
            int[] seen = Epoch(loader).SelectMany(b => b).ToArray();
            Assert.That(seen.Order(), Is.EqualTo(Enumerable.Range(0, 103)));
        }
    }

    [Test]
    public void ShuffleIsSeededAndChangesAcrossEpochs()
    {
        DataLoader Make(ulong seed) => new(Indexed(100), 16, shuffle: true, generator: new TorchGenerator(seed));
        DataLoader a = Make(7), b = Make(7), c = Make(8);

        var a1 = Epoch(a).SelectMany(x => x).ToArray();
        var a2 = Epoch(a).SelectMany(x => x).ToArray();
        var b1 = Epoch(b).SelectMany(x => x).ToArray();
        var b2 = Epoch(b).SelectMany(x => x).ToArray();
        var c1 = Epoch(c).SelectMany(x => x).ToArray();

        Assert.That(b1, Is.EqualTo(a1), "same seed, same first epoch");
        Assert.That(b2, Is.EqualTo(a2), "same seed, same second epoch");
        Assert.That(a2, Is.Not.EqualTo(a1), "a new order each epoch");
        Assert.That(c1, Is.Not.EqualTo(a1), "another seed, another order");
        Assert.That(a1, Is.Not.EqualTo(Enumerable.Range(0, 100)), "shuffled at all");
    }

    // Golden orders from PyTorch 1.13:
    //   torch.manual_seed(0); dl = DataLoader(list(range(20)), batch_size=8, shuffle=True)
    //   [x for b in dl for x in b.tolist()]  (twice: two epochs)
    [Test]
    public void ShuffleDrawsPyTorchsEpochOrders()
    {
        var loader = new DataLoader(Indexed(20), 8, shuffle: true, generator: new TorchGenerator(0));
        Assert.That(Epoch(loader).SelectMany(b => b),
            Is.EqualTo(new[] { 6, 15, 11, 13, 9, 2, 1, 17, 16, 8, 5, 12, 18, 3, 19, 10, 14, 4, 7, 0 }));
        Assert.That(Epoch(loader).SelectMany(b => b),
            Is.EqualTo(new[] { 12, 1, 13, 14, 10, 19, 9, 18, 15, 11, 16, 17, 4, 2, 5, 0, 8, 6, 7, 3 }));
    }

    [Test]
    public void ShuffleContinuesTheStreamAfterAModelsInitialisation()
    {
        // torch.manual_seed(7); torch.nn.Linear(3, 2); then one epoch of the loader above: the loader draws after
        // the model's initialisation, as in the blog's script, so seed s gives PyTorch's batches too.
        var generator = new TorchGenerator(7);
        _ = new LoRA.Managed.Nn.Linear(3, 2, generator);
        var loader = new DataLoader(Indexed(20), 8, shuffle: true, generator: generator);
        Assert.That(Epoch(loader).SelectMany(b => b),
            Is.EqualTo(new[] { 9, 5, 3, 11, 14, 4, 2, 6, 19, 16, 7, 1, 0, 18, 17, 12, 8, 10, 13, 15 }));
    }

    [Test]
    public void WithoutShuffleTheOrderIsSequential()
    {
        var loader = new DataLoader(Indexed(9), 4);
        Assert.That(Epoch(loader).SelectMany(b => b), Is.EqualTo(Enumerable.Range(0, 9)));
    }

    [Test]
    public void RejectsBadArguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new DataLoader(Indexed(4), 0));
        Assert.That(Assert.Throws<ArgumentException>(() => new DataLoader(Indexed(4), 2, shuffle: true))!.Message,
            Does.Contain("TorchGenerator"));
        var empty = Indexed(10).Filter(DigitSet.Parse("8,9")).Filter(DigitSet.Parse("0"));
        Assert.That(Assert.Throws<ArgumentException>(() => new DataLoader(empty, 2))!.Message, Does.Contain("empty"));
    }
}
