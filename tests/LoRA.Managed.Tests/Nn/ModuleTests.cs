using LoRA.Managed.Models;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Nn;

public class ModuleTests
{
    [Test]
    public void ASharedLayerGivesItsParametersOnceAndKeepsEveryStateDictName()
    {
        var shared = new Linear(8, 8, new TorchGenerator(1));
        var model = new Sequential(shared, new ReLU(), shared);
        Assert.That(model.NamedParameters().Select(p => p.Key),
            Is.EqualTo(new[] { "0.weight", "0.bias", "2.weight", "2.bias" }));
        Assert.That(model.StateDict().Keys, Has.Count.EqualTo(4), "state_dict keeps every name");
        Assert.That(model.Parameters(), Is.EqualTo(new Tensor[] { shared.Weight, shared.Bias! }));
        Assert.That(model.ParameterCount(), Is.EqualTo(72));
        // The trainer's optimiser steps the shared weight once (the optimiser refuses a parameter listed twice).
        var optimizer = LoRA.Managed.Training.Trainer.CreateOptimizer(model,
            new LoRA.Managed.Training.TrainingArguments());
        Assert.That(optimizer.Parameters, Is.EqualTo(new Tensor[] { shared.Weight, shared.Bias! }));
    }

    [Test]
    public void BlogMlpHasPyTorchStateDictNamesAndCount()
    {
        var model = Mlp.Blog(new TorchGenerator(0));
        Assert.That(model.NamedParameters().Select(p => p.Key), Is.EqualTo(new[]
        {
            "layers.1.weight", "layers.1.bias", "layers.3.weight", "layers.3.bias", "layers.5.weight", "layers.5.bias",
        }));
        Assert.That(model.ParameterCount(), Is.EqualTo(535_818));
        Assert.That(model.NamedModules().Select(m => m.Key), Is.EqualTo(new[]
        {
            "", "layers", "layers.0", "layers.1", "layers.2", "layers.3", "layers.4", "layers.5",
        }));
    }

    [Test]
    public void LinearInitIsUniformWithinOneOverSqrtFanIn()
    {
        var lin = new Linear(784, 512, new TorchGenerator(1));
        float bound = 1f / MathF.Sqrt(784);
        Assert.That(lin.Weight.Data.ToArray().All(v => MathF.Abs(v) <= bound), Is.True);
        Assert.That(lin.Bias!.Data.ToArray().All(v => MathF.Abs(v) <= bound), Is.True);
        // A uniform distribution on ±b has variance b²/3.
        double var = lin.Weight.Data.ToArray().Average(v => (double)v * v);
        Assert.That(var, Is.EqualTo(bound * bound / 3.0).Within(0.02 * bound * bound));
    }

    [Test]
    public void SameSeedSameWeights()
    {
        var a = Mlp.Blog(new TorchGenerator(42));
        var b = Mlp.Blog(new TorchGenerator(42));
        var c = Mlp.Blog(new TorchGenerator(43));
        Assert.That(a.Parameters().First().Data.ToArray(), Is.EqualTo(b.Parameters().First().Data.ToArray()));
        Assert.That(a.Parameters().First().Data.ToArray(), Is.Not.EqualTo(c.Parameters().First().Data.ToArray()));
    }

    [Test]
    public void LoadStateDictCopiesAndRefusesBadShapesWithoutChangingAnything()
    {
        var a = new Mlp(new TorchGenerator(1), 4, 3, 2);
        var b = new Mlp(new TorchGenerator(2), 4, 3, 2);
        b.LoadStateDict(a.StateDict());
        Assert.That(b.Parameters().First().Data.ToArray(), Is.EqualTo(a.Parameters().First().Data.ToArray()));

        var before = b.Parameters().Select(p => p.Data.ToArray()).ToList();
        var bad = new Dictionary<string, Tensor>(a.StateDict()) { ["layers.3.weight"] = new Tensor(5, 3) };
        var ex = Assert.Throws<ArgumentException>(() => b.LoadStateDict(bad));
        Assert.That(ex!.Message, Does.Contain("layers.3.weight").And.Contain("[5, 3]").And.Contain("[2, 3]"));
        Assert.That(b.Parameters().Select(p => p.Data.ToArray()).ToList(), Is.EqualTo(before));

        var missing = new Dictionary<string, Tensor>(a.StateDict());
        missing.Remove("layers.1.bias");
        ex = Assert.Throws<ArgumentException>(() => b.LoadStateDict(missing));
        Assert.That(ex!.Message, Does.Contain("missing keys [layers.1.bias]"));
    }

    [Test]
    public void ReplaceChildSwapsTheLayerUsedByForward()
    {
        var g = new TorchGenerator(3);
        var model = new Mlp(g, 4, 3, 2);
        var replacement = new Linear(3, 2, g);
        model.Layers.ReplaceChild("3", replacement);
        Assert.That(model.Layers[3], Is.SameAs(replacement));
        Assert.That(model.NamedParameters().Single(p => p.Key == "layers.3.weight").Value,
            Is.SameAs(replacement.Weight));
        Assert.Throws<ArgumentException>(() => model.Layers.ReplaceChild("9", replacement));
    }

    [Test]
    public void DropoutIsIdentityInEvalModeAndScalesInTraining()
    {
        var d = new Dropout(0.5f, new TorchGenerator(4));
        var x = new Tensor(1000);
        x.Data.Fill(1f);
        var y = d.Forward(x);
        Assert.That(y.Data.ToArray().All(v => v == 0f || v == 2f), Is.True);
        Assert.That(y.Data.ToArray().Count(v => v == 0f), Is.InRange(400, 600));
        d.Eval();
        Assert.That(d.Forward(x), Is.SameAs(x));
    }
}
