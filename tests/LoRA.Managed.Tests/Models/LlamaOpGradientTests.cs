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

    [Test]
    public void SwiGlu()
    {
        var g = new TorchGenerator(37);
        Tensor a = GradCheck.Param(g, 3, 7), b = GradCheck.Param(g, 3, 7);
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.SwiGlu(a, b)), new[] { a, b });
        // One tensor as both gate and up: x·silu(x), the second gradient added to the first.
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.SwiGlu(a, a)), new[] { a });
    }

    // The op against the chain it replaces, Mul(Silu(gate), up): the same values, and the same gradients both when
    // they start at the op and when another use of gate and up has started them first (accumulation).
    [TestCase(false), TestCase(true)]
    public void SwiGluGivesTheChainsValuesAndGradients(bool otherUseFirst)
    {
        var g = new TorchGenerator(38);
        Tensor gate = GradCheck.Param(g, 5, 300), up = GradCheck.Param(g, 5, 300);
        float[] Run(Func<Tensor, Tensor, Tensor> gateOp, out float[] dGate, out float[] dUp)
        {
            gate.ZeroGrad();
            up.ZeroGrad();
            Tensor y = gateOp(gate, up);
            Tensor loss = GradCheck.WeightedSum(y);
            if (otherUseFirst)   // recorded after the gate, so its backward reaches gate and up first
                loss = Functional.Add(loss, GradCheck.WeightedSum(Functional.Add(gate, Functional.Scale(up, 3f)), 7));
            loss.Backward();
            dGate = gate.Grad.ToArray();
            dUp = up.Grad.ToArray();
            return y.Data.ToArray();
        }
        float[] chain = Run((a, b) => Functional.Mul(Functional.Silu(a), b), out float[] chainDGate,
            out float[] chainDUp);
        float[] fused = Run(Functional.SwiGlu, out float[] dGate, out float[] dUp);
        Assert.That(fused, Is.EqualTo(chain), "forward");
        Assert.That(dGate, Is.EqualTo(chainDGate), "∂gate");
        Assert.That(dUp, Is.EqualTo(chainDUp), "∂up");
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
