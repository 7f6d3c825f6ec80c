using LoRA.Managed.Models;
using LoRA.Managed.Autograd;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Autograd;

public class TapeTests
{
    [Test]
    public void WholeMlpWithCrossEntropyPassesGradientCheck()
    {
        var g = new TorchGenerator(11);
        var model = new Mlp(g, 6, 5, 4, 3);
        var x = new Tensor(4, 6);
        g.FillUniform(x.Data, -2f, 2f);
        int[] labels = { 0, 2, 1, 2 };
        GradCheck.Check(() => Functional.CrossEntropy(model.Forward(x), labels), model.Parameters(), eps: 1e-3f,
            tol: 1e-3f);
    }

    [Test]
    public void GradientsAccumulateUntilZeroed()
    {
        var w = new Tensor(new float[] { 2f }, 1, 1) { RequiresGrad = true };
        var x = new Tensor(new float[] { 3f }, 1, 1);
        Functional.MatMul(x, w).Backward();
        Functional.MatMul(x, w).Backward();
        Assert.That(w.Grad[0], Is.EqualTo(6f));
        w.ZeroGrad();
        Functional.MatMul(x, w).Backward();
        Assert.That(w.Grad[0], Is.EqualTo(3f));
    }

    [Test]
    public void NoGradScopeRecordsNothing()
    {
        var g = new TorchGenerator(1);
        var model = new Mlp(g, 4, 3, 2);
        Tape.Current.Clear();
        Tensor y;
        using (Tape.NoGrad()) y = model.Forward(new Tensor(2, 4));
        Assert.That(Tape.Current.Count, Is.EqualTo(0));
        Assert.That(y.RequiresGrad, Is.False);
        Assert.That(Tape.IsGradEnabled, Is.True);
    }

    [Test]
    public void FrozenParametersReceiveNoGradient()
    {
        var g = new TorchGenerator(2);
        var model = new Mlp(g, 4, 3, 2);
        var first = (Linear)model.Layers[1];
        first.RequiresGrad(false);
        var loss = Functional.CrossEntropy(model.Forward(new TorchGenerator(3).Rand(5, 4)), new[] { 0, 1, 1, 0, 1 });
        loss.Backward();
        Assert.That(first.Weight.HasGrad, Is.False);
        Assert.That(first.Bias!.HasGrad, Is.False);
        var last = (Linear)model.Layers[3];
        Assert.That(last.Weight.HasGrad, Is.True);
        Assert.That(last.Weight.Grad.ToArray().Any(v => v != 0f), Is.True);
    }

    [Test]
    public void BackwardFromNonScalarIsRefusedWithItsShape()
    {
        var a = new Tensor(2, 3) { RequiresGrad = true };
        var y = Functional.Scale(a, 2f);
        var ex = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.That(ex!.Message, Does.Contain("[2, 3]"));
        Tape.Current.Clear();
    }

    [Test]
    public void ShapeMismatchNamesTheOpAndBothShapes()
    {
        var ex = Assert.Throws<ArgumentException>(() => Functional.MatMul(new Tensor(2, 3), new Tensor(4, 5)));
        Assert.That(ex!.Message, Does.Contain("matmul").And.Contain("[2, 3]").And.Contain("[4, 5]"));
        ex = Assert.Throws<ArgumentException>(() => Functional.Linear(new Tensor(2, 3), new Tensor(4, 5)));
        Assert.That(ex!.Message, Does.Contain("linear").And.Contain("[2, 3]").And.Contain("[4, 5]"));
        ex = Assert.Throws<ArgumentException>(() => Functional.Add(new Tensor(2, 3), new Tensor(3, 2)));
        Assert.That(ex!.Message, Does.Contain("add").And.Contain("[2, 3]").And.Contain("[3, 2]"));
    }
}
