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

    // Golden values below come from PyTorch 1.13 (Debian python3-torch), printed by:
    //   torch.manual_seed(0); [torch.empty((), dtype=torch.int64).random_().item() for _ in range(4)]
    //   g = torch.Generator(); g.manual_seed(S); torch.randperm(n, generator=g).tolist()
    [Test]
    public void NextInt64IsTorchsInt64Random()
    {
        var g = new TorchGenerator(0);
        long[] drawn = [g.NextInt64(), g.NextInt64(), g.NextInt64(), g.NextInt64()];
        // The first and second draws have the top bit set before the reduction modulo 2^63, which checks it.
        Assert.That(drawn,
            Is.EqualTo(new[] { 900450186894289455L, 3969543146641149120L, 1895649597198586619L, 827948490035658087L }));
    }

    [TestCase(123UL, new[] { 2, 0, 8, 1, 3, 7, 4, 9, 5, 6 })]
    [TestCase(2026UL, new[] { 8, 7, 9, 2, 1, 10, 0, 11, 6, 12, 4, 3, 5 })]
    public void RandPermIsTorchsRandPerm(ulong seed, int[] expected)
    {
        var perm = new int[expected.Length];
        new TorchGenerator(seed).RandPerm(perm);
        Assert.That(perm, Is.EqualTo(expected));
    }

    [Test]
    public void RandPermOfTheBlogsSizeStartsAsTorchsAndIsAPermutation()
    {
        // torch.randperm(48200, generator=g)[:8] with g seeded 2026; 48,200 is the size of MNIST's 0-7 training set.
        var perm = new int[48200];
        var g = new TorchGenerator(2026);
        g.RandPerm(perm);
        Assert.That(perm[..8], Is.EqualTo(new[] { 13305, 38886, 40906, 7501, 23153, 23557, 25535, 1944 }));
        Assert.That(perm.Order(), Is.EqualTo(Enumerable.Range(0, 48200)));
        var one = new int[1];
        g.RandPerm(one); // n = 1 draws nothing
        Assert.That(one, Is.EqualTo(new[] { 0 }));
    }
}
