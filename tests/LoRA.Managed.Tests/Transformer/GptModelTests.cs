using LoRA.Managed.Models;
using LoRA.Managed.Autograd;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;
using LoRA.Managed.Tests.Autograd;

namespace LoRA.Managed.Tests.Transformer;

/// <summary>The GPT modules: names LoRA targets, gradients end to end, causality, and that it learns.</summary>
public class GptModelTests
{
    private static readonly GptConfig Tiny = new() { VocabSize = 7, BlockSize = 4, Layers = 1, Heads = 2, Embed = 8 };

    [Test]
    public void ModuleAndParameterNamesFollowTheLoraTargetConvention()
    {
        var model = new GptModel(Tiny with { Layers = 2 }, new TorchGenerator(1));
        var modules = model.NamedModules().Select(m => m.Key).ToList();
        foreach (string name in new[] { "blocks.0.attn.q_proj", "blocks.0.attn.k_proj", "blocks.0.attn.v_proj",
            "blocks.1.attn.o_proj",
                     "blocks.1.mlp.fc1", "blocks.1.mlp.fc2", "blocks.0.ln_1", "blocks.0.ln_2", "wte", "wpe", "ln_f",
                     "lm_head" })
            Assert.That(modules, Does.Contain(name));
        Assert.That(modules.Count(m => m.EndsWith("q_proj") || m.EndsWith("k_proj") || m.EndsWith("v_proj")),
            Is.EqualTo(6));
        var parameters = model.NamedParameters().ToDictionary(p => p.Key, p => p.Value);
        Assert.That(parameters["blocks.0.attn.q_proj.weight"].Shape, Is.EqualTo(new[] { 8, 8 }));
        Assert.That(parameters["wte.weight"].Shape, Is.EqualTo(new[] { 7, 8 }));
        Assert.That(parameters.ContainsKey("lm_head.bias"), Is.False);
        // Per block: 4·(C²+C) attention + (C·4C+4C) + (4C·C+C) MLP + 2·2C norms; plus V·C + T·C + 2C + C·V.
        int c = 8, perBlock = 4 * (c * c + c) + (c * 4 * c + 4 * c) + (4 * c * c + c) + 4 * c;
        Assert.That(model.ParameterCount(), Is.EqualTo(2 * perBlock + 7 * c + 4 * c + 2 * c + c * 7));
    }

    [Test]
    public void GradientsOfTheLanguageModelLossMatchFiniteDifferences()
    {
        var g = new TorchGenerator(2);
        var model = new GptModel(Tiny, g);
        // Larger weights than the 0.02 initialisation, so every path carries a visible gradient.
        foreach (var p in model.Parameters()) g.FillUniform(p.Data, -0.5f, 0.5f);
        int[] ids = { 1, 5, 0, 6, 3, 3, 2, 4 }, targets = { 5, 0, 6, 2, 3, 2, 4, 1 };
        GradCheck.Check(() => Functional.CrossEntropy(model.Forward(ids, 2, 4), targets), model.Parameters(),
            eps: 1e-2f, tol: 1e-3f, maxPerTensor: 6);
    }

    [Test]
    public void EarlierLogitsDoNotDependOnLaterTokens()
    {
        var model = new GptModel(Tiny, new TorchGenerator(3));
        using var _ = Tape.NoGrad();
        Tensor a = model.Forward(new[] { 1, 2, 3, 4 }, 1, 4), b = model.Forward(new[] { 1, 2, 6, 0 }, 1, 4);
        Assert.That(a.Data.Slice(0, 2 * 7).ToArray(), Is.EqualTo(b.Data.Slice(0, 2 * 7).ToArray()));
        Assert.That(a.Data.Slice(2 * 7).ToArray(), Is.Not.EqualTo(b.Data.Slice(2 * 7).ToArray()));
    }

    [Test]
    public void SameSeedSameModelAndFloatIdsMatchIntIds()
    {
        var a = new GptModel(Tiny, new TorchGenerator(4));
        var b = new GptModel(Tiny, new TorchGenerator(4));
        using var _ = Tape.NoGrad();
        Tensor la = a.Forward(new[] { 0, 1, 2, 3, 4, 5 }, 2, 3);
        Tensor lb = b.Forward(new Tensor(new float[] { 0, 1, 2, 3, 4, 5 }, 2, 3));
        Assert.That(la.Shape, Is.EqualTo(new[] { 6, 7 }));
        Assert.That(la.Data.ToArray(), Is.EqualTo(lb.Data.ToArray()));
        Assert.Throws<ArgumentException>(() => a.Forward(new Tensor(new float[] { 0.5f, 1 }, 1, 2)));
        Assert.Throws<ArgumentException>(() => a.Forward(new int[5], 1, 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Forward(new[] { 7 }, 1, 1));
        Assert.Throws<ArgumentException>(() => new GptModel(Tiny with { Heads = 3 }, new TorchGenerator(1)));
    }

    [Test]
    public void ReplacingQProjTakesEffectAndWrongTypesAreRefused()
    {
        var g = new TorchGenerator(5);
        var model = new GptModel(Tiny, g);
        int[] ids = { 1, 2, 3, 4 };
        float[] before, after;
        using (Tape.NoGrad()) before = model.Forward(ids, 1, 4).Data.ToArray();
        var attn = (CausalSelfAttention)((GptBlock)model.Blocks[0]).Attn;
        attn.ReplaceChild("q_proj", new Linear(8, 8, g));
        using (Tape.NoGrad()) after = model.Forward(ids, 1, 4).Data.ToArray();
        Assert.That(after, Is.Not.EqualTo(before));
        Assert.That(attn.QProj, Is.SameAs(model.NamedModules().Single(m => m.Key == "blocks.0.attn.q_proj").Value));
        Assert.Throws<ArgumentException>(() => model.ReplaceChild("wte", new Linear(2, 2, g)));
        Assert.That(model.NamedModules().Single(m => m.Key == "wte").Value, Is.SameAs(model.Wte));
    }

    [Test]
    public void TinyGptOverfitsARepeatedString()
    {
        const string text = "to be or not to be, that is the question. ";
        var chars = text.Distinct().OrderBy(ch => ch).ToList();
        int[] tokens = Enumerable.Repeat(text, 4).SelectMany(s => s).Select(ch => chars.IndexOf(ch)).ToArray();
        var config = new GptConfig { VocabSize = chars.Count, BlockSize = 16, Layers = 1, Heads = 2, Embed = 32 };
        var g = new TorchGenerator(6);
        var model = new GptModel(config, g);
        var opt = new AdamW(model.Parameters(), 3e-3, weightDecay: 0);
        int batch = 8, time = config.BlockSize;
        var x = new int[batch * time];
        var y = new int[batch * time];
        float first = 0, last = 0;
        for (int step = 0; step < 150; step++)
        {
            for (int b = 0; b < batch; b++)
            {
                int start = g.NextInt(tokens.Length - time - 1);
                tokens.AsSpan(start, time).CopyTo(x.AsSpan(b * time));
                tokens.AsSpan(start + 1, time).CopyTo(y.AsSpan(b * time));
            }
            opt.ZeroGrad();
            Tensor loss = Functional.CrossEntropy(model.Forward(x, batch, time), y);
            loss.Backward();
            opt.Step();
            if (step == 0) first = loss.Item();
            last = loss.Item();
        }
        TestContext.Out.WriteLine($"loss {first:F3} → {last:F3}");
        Assert.That(first, Is.EqualTo(Math.Log(chars.Count)).Within(0.2),
            "an untrained model predicts nearly uniformly");
        Assert.That(last, Is.LessThan(0.25 * first));
    }
}
