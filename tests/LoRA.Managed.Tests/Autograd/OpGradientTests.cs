using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Autograd;

/// <summary>A finite-difference gradient check for every differentiable op.</summary>
public class OpGradientTests
{
    [TestCase(1, 3, 2)]
    [TestCase(5, 7, 4)]
    [TestCase(3, 17, 9)]
    public void Linear(int n, int inF, int outF)
    {
        var g = new TorchGenerator(1);
        Tensor x = GradCheck.Param(g, n, inF), w = GradCheck.Param(g, outF, inF), b = GradCheck.Param(g, outF);
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.Linear(x, w, b)), new[] { x, w, b });
    }

    [Test]
    public void LinearWithoutBiasAndLeadingDimensions()
    {
        var g = new TorchGenerator(2);
        Tensor x = GradCheck.Param(g, 2, 3, 5), w = GradCheck.Param(g, 4, 5);
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.Linear(x, w)), new[] { x, w });
    }

    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    [TestCase(true, true)]
    public void MatMul(bool ta, bool tb)
    {
        var g = new TorchGenerator(3);
        int m = 4, k = 6, n = 5;
        Tensor a = ta ? GradCheck.Param(g, k, m) : GradCheck.Param(g, m, k);
        Tensor b = tb ? GradCheck.Param(g, n, k) : GradCheck.Param(g, k, n);
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.MatMul(a, b, ta, tb)), new[] { a, b });
    }

    [Test]
    public void Relu()
    {
        var g = new TorchGenerator(4);
        Tensor x = GradCheck.Param(g, 6, 7);
        // Keep every input away from the kink at 0, where the derivative is undefined.
        for (int i = 0; i < x.Count; i++) if (MathF.Abs(x[i]) < 0.05f) x[i] = 0.3f;
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.Relu(x)), new[] { x });
    }

    [Test]
    public void AddAndScale()
    {
        var g = new TorchGenerator(5);
        Tensor a = GradCheck.Param(g, 3, 4), b = GradCheck.Param(g, 3, 4);
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.Scale(Functional.Add(a, b), -1.5f)), new[] { a, b });
    }

    [Test]
    public void SameInputUsedTwiceAccumulates()
    {
        var g = new TorchGenerator(6);
        Tensor a = GradCheck.Param(g, 2, 3);
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.Add(a, Functional.Scale(a, 3f))), new[] { a });
    }

    [Test]
    public void Dropout()
    {
        var g = new TorchGenerator(7);
        Tensor x = GradCheck.Param(g, 4, 8);
        // The mask must be the same in every evaluation: re-seed the generator each time.
        var gen = new TorchGenerator(99);
        GradCheck.Check(() =>
        {
            gen.ManualSeed(99);
            return GradCheck.WeightedSum(Functional.Dropout(x, 0.4f, gen));
        }, new[] { x });
    }

    [Test]
    public void Reshape()
    {
        var g = new TorchGenerator(8);
        Tensor x = GradCheck.Param(g, 2, 6);
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.Reshape(x, 3, 4)), new[] { x });
    }

    [Test]
    public void CrossEntropy()
    {
        var g = new TorchGenerator(9);
        Tensor z = GradCheck.Param(g, 5, 4);
        int[] labels = { 0, 3, 1, 1, 2 };
        GradCheck.Check(() => Functional.CrossEntropy(z, labels), new[] { z }, eps: 1e-2f, tol: 1e-3f);
    }

    [Test]
    public void CrossEntropyIsStableForLogitsInTheThousands()
    {
        var z = new Tensor(new float[] { 3000f, 2990f, -500f, 1000f, 1000f, 1000f }, 2, 3) { RequiresGrad = true };
        var loss = Functional.CrossEntropy(z, new[] { 1, 2 });
        // Row 0: −log softmax = log(1 + e¹⁰ + …) − (−10) ≈ 10.0000454; row 1: log 3.
        double expected = (10 + Math.Log(1 + Math.Exp(-10)) + Math.Log(3)) / 2;
        Assert.That(loss.Item(), Is.EqualTo(expected).Within(1e-4));
        loss.Backward();
        Assert.That(z.Grad.ToArray().All(float.IsFinite), Is.True);
    }
}
