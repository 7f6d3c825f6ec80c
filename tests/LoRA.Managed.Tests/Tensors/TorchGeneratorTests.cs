using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Tensors;

public class TorchGeneratorTests
{
    [Test]
    public void Seed13ReproducesTorchRand()
    {
        // torch.manual_seed(13); torch.rand(4, 4)[0] — the blog's W starts with these values.
        var w = new TorchGenerator(13).Rand(4, 4);
        Assert.That(w[0], Is.EqualTo(0.09181702f).Within(1e-7f));
        Assert.That(w[1], Is.EqualTo(0.47938061f).Within(1e-7f));
        Assert.That(w[2], Is.EqualTo(0.81055129f).Within(1e-7f));
        Assert.That(w[3], Is.EqualTo(0.01510715f).Within(1e-7f));
    }

    [Test]
    public void Mt19937ReferenceOutput()
    {
        // The C++ standard fixes mt19937's 10000th output for the default seed 5489 at 4123659995.
        var g = new TorchGenerator(5489);
        uint x = 0;
        for (int i = 0; i < 10000; i++) x = g.NextUInt32();
        Assert.That(x, Is.EqualTo(4123659995u));
    }

    [Test]
    public void StateRoundTripContinuesTheSameSequence()
    {
        var g = new TorchGenerator(7);
        for (int i = 0; i < 1000; i++) g.NextUInt32();
        var state = g.GetState();
        var expected = Enumerable.Range(0, 700).Select(_ => g.NextUInt32()).ToArray();
        var h = new TorchGenerator(1);
        h.SetState(state);
        Assert.That(Enumerable.Range(0, 700).Select(_ => h.NextUInt32()).ToArray(), Is.EqualTo(expected));
    }

    [Test]
    public void NextIntIsInRangeAndShuffleIsAPermutation()
    {
        var g = new TorchGenerator(3);
        int[] counts = new int[6];
        for (int i = 0; i < 6000; i++) counts[g.NextInt(6)]++;
        Assert.That(counts.All(c => c is > 850 and < 1150), Is.True, string.Join(",", counts));
        int[] items = Enumerable.Range(0, 100).ToArray();
        g.Shuffle<int>(items);
        Assert.That(items.OrderBy(v => v), Is.EqualTo(Enumerable.Range(0, 100)));
        Assert.That(items, Is.Not.EqualTo(Enumerable.Range(0, 100)));
    }
}
