using LoRA.Managed.Autograd;
using LoRA.Managed.Models;
using LoRA.Managed.Tensors;
using LoRA.Managed.Tests.Autograd;

namespace LoRA.Managed.Tests.Models;

/// <summary>Finite-difference gradient checks of the ops the Hugging Face models add.</summary>
public class LlamaOpGradientTests
{
    [TestCase(1, 1), TestCase(3, 7), TestCase(2, 65)]
    public void RmsNorm(int rows, int cols)
    {
        var g = new TorchGenerator(31);
        Tensor x = GradCheck.Param(g, rows, cols), w = GradCheck.Param(g, cols);
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.RmsNorm(x, w, 1e-5f)), new[] { x, w });
    }

    [Test]
    public void SiluAndMul()
    {
        var g = new TorchGenerator(32);
        Tensor a = GradCheck.Param(g, 3, 7), b = GradCheck.Param(g, 3, 7);
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.Mul(Functional.Silu(a), b)), new[] { a, b });
    }

    [TestCase(0), TestCase(5)]
    public void Rope(int start)
    {
        var g = new TorchGenerator(33);
        Tensor x = GradCheck.Param(g, 2, 3, 2, 6);
        var rope = new RotaryEmbedding(6, 100, null);
        rope.Ensure(start + 3);
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.Rope(x, rope.Cos, rope.Sin, start)), new[] { x });
    }

    [Test]
    public void RepeatKvSumsEachGroup()
    {
        var g = new TorchGenerator(34);
        Tensor x = GradCheck.Param(g, 2, 2, 3, 4);
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.RepeatKv(x, 3)), new[] { x });
        Tensor y = Functional.RepeatKv(x, 3);
        Assert.That(y.Shape, Is.EqualTo(new[] { 2, 6, 3, 4 }));
        Assert.That(y.Data.Slice(5 * 12, 12).ToArray(), Is.EqualTo(x.Data.Slice(1 * 12, 12).ToArray()),
            "head 5 is kv head 5/3 = 1");
    }

    [Test]
    public void Narrow()
    {
        var g = new TorchGenerator(35);
        Tensor x = GradCheck.Param(g, 2, 3, 9);
        GradCheck.Check(() =>
            GradCheck.WeightedSum(Functional.Add(Functional.Narrow(x, 3, 3),
                Functional.Scale(Functional.Narrow(x, 2, 3), 2f))), new[] { x });
    }

    [Test]
    public void LinearWithConv1DWeights()
    {
        var g = new TorchGenerator(36);
        Tensor x = GradCheck.Param(g, 2, 3, 5), w = GradCheck.Param(g, 5, 4), b = GradCheck.Param(g, 4);
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.Linear(x, w, b, weightInOut: true)), new[] { x, w, b });
        // Same map as the (out, in) layout with the weight transposed.
        var wt = new Tensor(4, 5);
        for (int i = 0; i < 5; i++) for (int o = 0; o < 4; o++) wt[o, i] = w[i, o];
        using (Tape.NoGrad())
            HfModelTwinTests.AssertClose(Functional.Linear(x, w, b, true).Data.ToArray(),
                Functional.Linear(x, wt, b).Data.ToArray(), 1e-6, "conv1d");
    }
}
