using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Autograd;

/// <summary>The fused head + loss against its reference twin, <c>CrossEntropy(Linear(h, W))</c>, across chunk
/// edges.</summary>
public class LinearCrossEntropyOpTests
{
    [TestCase(1, 7, 5)]
    [TestCase(7, 63, 9)]
    [TestCase(63, 65, 4)]
    [TestCase(65, 7, 3)]
    [TestCase(129, 129, 8)]
    public void MatchesTheUnfusedHeadAndLoss(int n, int vocab, int hidden)
    {
        var g = new TorchGenerator((ulong)(n * 7919 + vocab));
        Tensor h = g.Rand(n, hidden), w = g.Rand(vocab, hidden);
        int[] labels = Enumerable.Range(0, n).Select(i => i % 5 == 3 ? -100 : (i * 31 + 7) % vocab).ToArray();
        if (labels.All(l => l == -100)) labels[0] = 0;
        h.RequiresGrad = true;
        Tensor reference = Functional.CrossEntropy(Functional.Linear(h, w), labels);
        float expected = reference.Item();
        Functional.Scale(reference, 0.75f).Backward();
        float[] expectedGrad = h.Grad.ToArray();
        h.ZeroGrad();

        Tensor fused = Functional.LinearCrossEntropy(h, w, labels);
        Assert.That(fused.Item(), Is.EqualTo(expected).Within(1e-6f * Math.Max(1f, Math.Abs(expected))));
        Functional.Scale(fused, 0.75f).Backward();
        float[] got = h.Grad.ToArray();
        for (int i = 0; i < got.Length; i++)
            Assert.That(got[i], Is.EqualTo(expectedGrad[i]).Within(1e-6f + 1e-5f * Math.Abs(expectedGrad[i])),
                $"∂h[{i}]");
    }

    [Test]
    public void PassesTheFiniteDifferenceCheck()
    {
        var g = new TorchGenerator(8);
        Tensor h = g.Rand(70, 6), w = g.Rand(11, 6);
        h.RequiresGrad = true;
        int[] labels = Enumerable.Range(0, 70).Select(i => i % 11).ToArray();
        GradCheck.Check(() => Functional.LinearCrossEntropy(h, w, labels), new[] { h }, eps: 1e-2f, tol: 1e-3f);
    }

    [Test]
    public void ATrainableHeadAndBadShapesAreRefused()
    {
        var h = new Tensor(3, 4) { RequiresGrad = true };
        var w = new Tensor(5, 4) { RequiresGrad = true };
        Assert.That(Assert.Throws<ArgumentException>(() => Functional.LinearCrossEntropy(h, w, [0, 1, 2]))!.Message,
            Does.Contain("requires a gradient"));
        w.RequiresGrad = false;
        Assert.That(
            Assert.Throws<ArgumentException>(() => Functional.LinearCrossEntropy(h, new Tensor(5, 3),
                [0, 1, 2]))!.Message,
            Does.Contain("[3, 4]").And.Contain("[5, 3]"));
        Assert.Throws<ArgumentException>(() => Functional.LinearCrossEntropy(h, w, [0, 1]));
        Assert.Throws<ArgumentException>(() => Functional.LinearCrossEntropy(h, w, [-100, -100, -100]));
        Assert.Throws<ArgumentException>(() => Functional.LinearCrossEntropy(h, w, [0, 5, 1]));
    }
}
