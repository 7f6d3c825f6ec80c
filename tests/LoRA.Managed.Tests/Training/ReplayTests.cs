using LoRA.Managed.Data;
using LoRA.Managed.Recipes;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Training;

/// <summary>
/// Replay of the old task during the adapter phase (<see cref="ReplaySampling"/>,
/// <see cref="BlogExperimentOptions.Replay"/>).
/// </summary>
public class ReplayTests
{
    // Ten classes of 784-pixel "images": class c is bright (200..255) on pixels 78c..78c+77 and dark (0..55)
    // elsewhere, so the blog's MLP learns them in one epoch and an adapter on 8-9 alone can forget 0-7.
    private static MnistDataset Bands(int count, ulong seed)
    {
        var gen = new TorchGenerator(seed);
        var pixels = new byte[count * 784];
        var labels = new byte[count];
        for (int i = 0; i < count; i++)
        {
            int c = gen.NextInt(10);
            labels[i] = (byte)c;
            for (int p = 0; p < 784; p++)
                pixels[i * 784 + p] = (byte)(p / 78 == c ? 200 + gen.NextInt(56) : gen.NextInt(56));
        }
        return new MnistDataset(pixels, labels, 784, PixelScale.MinusOneToOne);
    }

    [Test]
    public void CountIsTheFloorOfTheFractionAndBadFractionsAreRefused()
    {
        Assert.That(ReplaySampling.Count(0, 48_200), Is.Zero);
        Assert.That(ReplaySampling.Count(0.05, 48_200), Is.EqualTo(2_410));
        Assert.That(ReplaySampling.Count(0.1, 7), Is.Zero); // ⌊0.7⌋
        Assert.That(ReplaySampling.Count(1, 7), Is.EqualTo(7));
        foreach (double bad in new[] { -0.01, 1.01, double.NaN })
            Assert.That(() => ReplaySampling.Count(bad, 10), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void IndicesAreDistinctSortedInRangeAndTheSameForTheSameSeed()
    {
        int[] a = ReplaySampling.Indices(0.05, 1_000, new TorchGenerator(3));
        int[] b = ReplaySampling.Indices(0.05, 1_000, new TorchGenerator(3));
        int[] c = ReplaySampling.Indices(0.05, 1_000, new TorchGenerator(4));
        Assert.That(a, Has.Length.EqualTo(50));
        Assert.That(a, Is.Unique.And.Ordered.And.All.InRange(0, 999));
        Assert.That(b, Is.EqualTo(a));
        Assert.That(c, Is.Not.EqualTo(a));

        var perm = new int[1_000];
        new TorchGenerator(3).RandPerm(perm); // the documented draw: randperm's first k, sorted
        Assert.That(a, Is.EqualTo(perm[..50].Order().ToArray()));
    }

    [Test]
    public void FractionZeroDrawsNothingAndMixKeepsTheNewTaskThenTheReplayedSamples()
    {
        MnistDataset data = Bands(200, 1);
        MnistDataset old = data.Filter(DigitSet.Parse("0-7")), fresh = data.Filter(DigitSet.Parse("8,9"));
        var gen = new TorchGenerator(9);
        Assert.That(ReplaySampling.Mix(fresh, old, 0, gen), Is.SameAs(fresh));
        Assert.That(gen.NextUInt32(), Is.EqualTo(new TorchGenerator(9).NextUInt32()), "replay 0 must not draw");

        MnistDataset mixed = ReplaySampling.Mix(fresh, old, 0.25, new TorchGenerator(9));
        int[] chosen = ReplaySampling.Indices(0.25, old.Count, new TorchGenerator(9));
        Assert.That(mixed.Count, Is.EqualTo(fresh.Count + old.Count / 4));
        for (int i = 0; i < fresh.Count; i++) Assert.That(mixed.Image(i).SequenceEqual(fresh.Image(i)), Is.True);
        for (int j = 0; j < chosen.Length; j++)
        {
            Assert.That(mixed.Label(fresh.Count + j), Is.EqualTo(old.Label(chosen[j])));
            Assert.That(mixed.Image(fresh.Count + j).SequenceEqual(old.Image(chosen[j])), Is.True);
        }
    }

    [Test]
    public void ReplayLeavesTheBlogRunBitwiseAloneAndKeepsOldClassesBetter()
    {
        MnistDataset train = Bands(1_500, 2), test = Bands(600, 3);
        var plain = new BlogExperimentOptions { Seed = 5, Epochs = 1, LoraEpochs = 6 };
        BlogExperimentResult a = BlogExperiment.Run(train, test, plain);
        BlogExperimentResult b = BlogExperiment.Run(train, test, plain with { Replay = 0.2 });

        Assert.That(a.Replay, Is.Null);
        Assert.That(b.LoraTraining.StepLosses, Is.EqualTo(a.LoraTraining.StepLosses)); // exact floats
        Assert.That(b.Lora0To7.Accuracy, Is.EqualTo(a.Lora0To7.Accuracy));
        Assert.That(b.Lora89.Accuracy, Is.EqualTo(a.Lora89.Accuracy));
        foreach (var ((name, pa), (_, pb)) in a.Adapted.NamedParameters().Zip(b.Adapted.NamedParameters()))
            Assert.That(pb.Array, Is.EqualTo(pa.Array).AsCollection, name);

        ReplayRun r = b.Replay!;
        int old = train.Filter(BlogExperiment.BaseDigits).Count;
        Assert.That(r.ReplaySamples, Is.EqualTo((int)Math.Floor(0.2 * old)));
        Assert.That(r.TrainSamples, Is.EqualTo(train.Filter(BlogExperiment.NewDigits).Count + r.ReplaySamples));
        Assert.That(r.Parameters, Is.EqualTo(a.LoraParameters), "the same adapter budget");
        Assert.That(a.Base0To7.Accuracy, Is.GreaterThan(0.95), "the base model learned 0-7");
        TestContext.Out.WriteLine($"no replay: 89 {a.Lora89.Accuracy} 0-7 {a.Lora0To7.Accuracy}; "
            + $"replay: 89 {r.Lora89.Accuracy} 0-7 {r.Lora0To7.Accuracy}");
        Assert.That(r.Lora89.Accuracy, Is.GreaterThan(0.9), "replay still learns 8-9");
        Assert.That(r.Lora0To7.Accuracy, Is.GreaterThan(a.Lora0To7.Accuracy + 0.2),
            $"replay keeps 0-7: {r.Lora0To7.Accuracy} with, {a.Lora0To7.Accuracy} without");
    }
}
