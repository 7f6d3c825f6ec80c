using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Autograd;

/// <summary>
/// Reshape's and add's backward hand the output's gradient buffer on to an input that has none yet
/// (<c>Tensor.TryPassGradTo</c>) instead of copying it: the gradients must be those of the copy.
/// </summary>
public class GradientHandOffTests
{
    // Σ y·upstream, whose gradient with respect to y is the upstream values.
    private static Tensor Loss(Tensor y, float[] upstream) =>
        Functional.Reshape(Functional.MatMul(Functional.Reshape(y, 1, y.Count),
            new Tensor(upstream, upstream.Length, 1)), 1);

    private static (Tensor X, float[] Up) Setup()
    {
        var g = new TorchGenerator(11);
        Tensor x = g.Rand(6, 5);
        x.RequiresGrad = true;
        var up = new float[30];
        g.FillUniform(up, -1f, 1f);
        return (x, up);
    }

    [Test]
    public void AddOfOneIntermediateToItselfGivesTwiceTheGradient()
    {
        var (x, up) = Setup();
        Tensor h = Functional.Reshape(x, 5, 6);
        Loss(Functional.Add(h, h), up).Backward();
        for (int i = 0; i < 30; i++) Assert.That(x.Grad[i], Is.EqualTo(2 * up[i]), $"element {i}");
    }

    [Test]
    public void AddOfTwoIntermediatesGivesEachTheGradient()
    {
        var (x, up) = Setup();
        Tensor a = Functional.Reshape(x, 5, 6), b = Functional.Reshape(x, 5, 6);
        Loss(Functional.Add(a, b), up).Backward();
        for (int i = 0; i < 30; i++) Assert.That(x.Grad[i], Is.EqualTo(up[i] + up[i]), $"element {i}");
    }

    [Test]
    public void AReshapeChainPassesTheGradientThroughUnchanged()
    {
        var (x, up) = Setup();
        Tensor y = Functional.Reshape(Functional.Reshape(Functional.Reshape(x, 30), 3, 10), 2, 15);
        Tensor z = Functional.Add(y, y);   // the chain's last output also feeds the add twice
        Loss(Functional.Reshape(z, 30), up).Backward();
        for (int i = 0; i < 30; i++) Assert.That(x.Grad[i], Is.EqualTo(2 * up[i]), $"element {i}");
    }
}
