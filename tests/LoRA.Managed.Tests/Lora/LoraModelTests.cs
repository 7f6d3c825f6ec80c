using LoRA.Managed.Autograd;
using LoRA.Managed.Models;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using static LoRA.Managed.Tests.Lora.LoraTestHelpers;

namespace LoRA.Managed.Tests.Lora;

/// <summary>Wrapping a model: naming, freezing, parameter counts, target matching, merging.</summary>
public class LoraModelTests
{
    private static PeftModel BlogPeft(out Mlp mlp, LoraConfig? config = null)
    {
        var g = new TorchGenerator(0);
        mlp = Mlp.Blog(g);
        return LoraModel.GetPeftModel(mlp,
            config ?? new LoraConfig { Rank = 4, Alpha = 1, Scaling = LoraScaling.Alpha,
                TargetModules = ["layers.5"] }, g);
    }

    [Test]
    public void TrainableParameterSummaryMatchesPeft()
    {
        var peft = BlogPeft(out _);
        Assert.That(peft.TrainableParameterSummary(),
            Is.EqualTo("trainable params: 1,064 || all params: 536,882 || trainable%: 0.1982"));
        Assert.That(peft.TrainableParameterCount, Is.EqualTo(1064));
        Assert.That(peft.AllParameterCount, Is.EqualTo(536_882));
        Assert.That(peft.BaseParameterCount, Is.EqualTo(535_818));
        Assert.That((100.0 * peft.TrainableParameterCount / peft.BaseParameterCount)
            .ToString("F2", System.Globalization.CultureInfo.InvariantCulture), Is.EqualTo("0.20"));
    }

    [Test]
    public void NamesAreTheBaseModelsWithLoraSubstitutions()
    {
        var peft = BlogPeft(out var mlp);
        var names = peft.NamedParameters().Select(p => p.Key).ToList();
        Assert.That(names, Is.EqualTo(new[]
        {
            "layers.1.weight", "layers.1.bias", "layers.3.weight", "layers.3.bias",
            "layers.5.base_layer.weight", "layers.5.base_layer.bias", "layers.5.lora_A.default.weight",
            "layers.5.lora_B.default.weight",
        }));
        Assert.That(mlp.NamedParameters().Select(p => p.Key), Is.EqualTo(names), "the base model is modified in place");
        Assert.That(peft.TrainableParameters().Count(), Is.EqualTo(2));
    }

    [Test]
    public void OnlyTheFactorsReceiveGradients()
    {
        var peft = BlogPeft(out _, new LoraConfig { Rank = 4, TargetModules = ["layers.5"], Init = LoraInit.Gaussian });
        var g = new TorchGenerator(1);
        var x = Random(g, 3, 784);
        LoRA.Managed.Autograd.Tape.Current.Clear();
        LoRA.Managed.Autograd.Functional.CrossEntropy(peft.Forward(x), new[] { 1, 2, 3 }).Backward();
        foreach (var (name, p) in peft.NamedParameters())
        {
            bool lora = name.Contains("lora_");
            Assert.That(p.RequiresGrad, Is.EqualTo(lora), name);
            // lora_B starts at zero, so lora_A's gradient is zero at step 0, but the buffer exists; lora_B's is
            // non-zero.
            Assert.That(p.HasGrad, Is.EqualTo(lora), name);
        }
        Assert.That(peft.StateDict()["layers.5.lora_B.default.weight"].Grad.ToArray().Any(v => v != 0f));
    }

    [TestCase("q_proj", new[] { "blocks.0.attn.q_proj", "blocks.1.attn.q_proj" })]
    [TestCase("*.q_proj", new[] { "blocks.0.attn.q_proj", "blocks.1.attn.q_proj" })]
    [TestCase("blocks.1.attn.q_proj", new[] { "blocks.1.attn.q_proj" })]
    [TestCase("blocks.*.attn.v_proj", new[] { "blocks.0.attn.v_proj", "blocks.1.attn.v_proj" })]
    public void TargetsMatchExactSuffixAndWildcard(string key, string[] expected)
    {
        var model = new Blocks(new TorchGenerator(3));
        var peft = LoraModel.GetPeftModel(model, new LoraConfig { Rank = 2, TargetModules = [key] },
            new TorchGenerator(1));
        Assert.That(peft.LoraLayers().Select(l => l.Key), Is.EqualTo(expected));
        Assert.That(TargetMatcher.Matches("proj", "blocks.0.attn.q_proj"), Is.False, "a suffix must start at a dot");
    }

    [Test]
    public void TargetMatchingNothingListsTheModules()
    {
        var mlp = Mlp.Blog(new TorchGenerator(0));
        var ex = Assert.Throws<ArgumentException>(() =>
            LoraModel.GetPeftModel(mlp, new LoraConfig { TargetModules = ["layers.9"] }, new TorchGenerator(0)));
        Assert.That(ex!.Message, Does.Contain("layers.9").And.Contain("layers.1").And.Contain("layers.5"));
        Assert.That(mlp.Layers[5], Is.TypeOf<Linear>(), "nothing changed");
    }

    [Test]
    public void TargetMatchingANonLinearIsRefused()
    {
        var mlp = Mlp.Blog(new TorchGenerator(0));
        var ex = Assert.Throws<ArgumentException>(() =>
            LoraModel.GetPeftModel(mlp, new LoraConfig { Rank = 2, TargetModules = ["layers.4"] },
                new TorchGenerator(0)));
        Assert.That(ex!.Message, Does.Contain("layers.4").And.Contain("ReLU"));
        Assert.That(mlp.Parameters().All(p => p.RequiresGrad), "nothing was frozen");
    }

    [Test]
    public void RankTooLargeNamesModuleAndShape()
    {
        var mlp = Mlp.Blog(new TorchGenerator(0));
        var ex = Assert.Throws<ArgumentException>(() =>
            LoraModel.GetPeftModel(mlp, new LoraConfig { Rank = 11, TargetModules = ["layers.5"] },
                new TorchGenerator(0)));
        Assert.That(ex!.Message, Does.Contain("layers.5").And.Contain("[10, 256]"));
    }

    [Test]
    public void BiasModesChooseTrainableBiases()
    {
        var all = BlogPeft(out _, new LoraConfig { Rank = 2, TargetModules = ["layers.5"], Bias = LoraBias.All });
        Assert.That(all.NamedParameters().Where(p => p.Value.RequiresGrad).Select(p => p.Key),
            Is.EquivalentTo(new[] { "layers.1.bias", "layers.3.bias", "layers.5.base_layer.bias",
                "layers.5.lora_A.default.weight", "layers.5.lora_B.default.weight" }));
        var only = BlogPeft(out _, new LoraConfig { Rank = 2, TargetModules = ["layers.5"], Bias = LoraBias.LoraOnly });
        Assert.That(only.NamedParameters().Where(p => p.Value.RequiresGrad).Select(p => p.Key),
            Is.EquivalentTo(new[] { "layers.5.base_layer.bias", "layers.5.lora_A.default.weight",
                "layers.5.lora_B.default.weight" }));
    }

    [Test]
    public void ModulesToSaveStayTrainable()
    {
        var peft = BlogPeft(out _,
            new LoraConfig { Rank = 2, TargetModules = ["layers.3"], ModulesToSave = ["layers.5"] });
        Assert.That(peft.NamedParameters().Where(p => p.Value.RequiresGrad).Select(p => p.Key),
            Is.EquivalentTo(new[] { "layers.3.lora_A.default.weight", "layers.3.lora_B.default.weight",
                "layers.5.weight", "layers.5.bias" }));
        Assert.That(peft.TrainableParameterCount, Is.EqualTo(2 * 512 + 256 * 2 + 2570));
    }

    [Test]
    public void SecondAdapterTrainsOnlyWhenActive()
    {
        var g = new TorchGenerator(0);
        var mlp = Mlp.Blog(g);
        var x = Random(new TorchGenerator(2), 2, 784);
        Tensor baseOut = mlp.Forward(x);
        var peft = LoraModel.GetPeftModel(mlp, new LoraConfig { Rank = 2, TargetModules = ["layers.5"] }, g);
        peft.AddAdapter("extra",
            new LoraConfig { Rank = 3, TargetModules = ["layers.3", "layers.5"], Init = LoraInit.Svd },
            new TorchGenerator(4));
        Assert.That(peft.ActiveAdapter, Is.EqualTo("default"));
        Assert.That(peft.TrainableParameterCount, Is.EqualTo(2 * 256 + 10 * 2));
        Assert.That(MaxAbsDiff(peft.Forward(x), baseOut), Is.LessThan(1e-6f), "default init: ΔW = 0");
        peft.SetAdapter("extra");
        Assert.That(peft.TrainableParameterCount, Is.EqualTo(3 * 512 + 256 * 3 + 3 * 256 + 10 * 3));
        Assert.That(MaxAbsDiff(peft.Forward(x), baseOut), Is.GreaterThan(1e-3f), "SVD init adds W_r");
        peft.AdaptersDisabled = true;
        Assert.That(MaxAbsDiff(peft.Forward(x), baseOut), Is.EqualTo(0f));
        peft.AdaptersDisabled = false;
        Assert.Throws<KeyNotFoundException>(() => peft.SetAdapter("nope"));
    }

    [Test]
    public void MergeUnmergeAndUnloadKeepTheFunction()
    {
        var g = new TorchGenerator(0);
        var mlp = Mlp.Blog(g);
        var peft = LoraModel.GetPeftModel(mlp,
            new LoraConfig { Rank = 4, Alpha = 1, Scaling = LoraScaling.Alpha, Init = LoraInit.Svd,
                TargetModules = ["layers.3", "layers.5"] }, g);
        var x = Random(new TorchGenerator(5), 4, 784);
        float[] w3 = ((LoraLinear)mlp.Layers[3]).BaseLayer.Weight.Array.ToArray();
        Tensor adapted = peft.Forward(x);
        peft.Merge();
        Assert.That(MaxAbsDiff(peft.Forward(x), adapted), Is.LessThan(1e-4f));
        peft.Unmerge();
        Assert.That(((LoraLinear)mlp.Layers[3]).BaseLayer.Weight.Array, Is.EqualTo(w3));
        Module plain = peft.MergeAndUnload();
        Assert.That(plain, Is.SameAs(mlp));
        Assert.That(mlp.Layers[3], Is.TypeOf<Linear>());
        Assert.That(mlp.NamedParameters().Select(p => p.Key),
            Is.EqualTo(new[] { "layers.1.weight", "layers.1.bias", "layers.3.weight", "layers.3.bias",
                "layers.5.weight", "layers.5.bias" }));
        Assert.That(MaxAbsDiff(plain.Forward(x), adapted), Is.LessThan(1e-4f));
    }

    [Test]
    public void TopLevelTargetIsSwappedInThePeftModelToo()
    {
        var g = new TorchGenerator(0);
        var seq = new Sequential(new Linear(4, 3, g), new ReLU(), new Linear(3, 2, g));
        var peft = LoraModel.GetPeftModel(seq, new LoraConfig { Rank = 1, TargetModules = ["2"] }, g);
        Assert.That(peft.NamedParameters().Select(p => p.Key), Does.Contain("2.lora_A.default.weight"));
        Assert.That(seq[2], Is.TypeOf<LoraLinear>());
    }

    /// <summary>A transformer-like tree: blocks.{0,1}.attn.{q_proj,v_proj}.</summary>
    private sealed class Blocks : Module
    {
        public Blocks(TorchGenerator g)
        {
            RegisterModule("blocks", new Sequential(new Block(g), new Block(g)));
        }

        public override Tensor Forward(Tensor input) => throw new InvalidOperationException("structure only");
    }

    private sealed class Block : Module
    {
        public Block(TorchGenerator g) => RegisterModule("attn", new Attn(g));

        public override Tensor Forward(Tensor input) => throw new InvalidOperationException("structure only");
    }

    private sealed class Attn : Module
    {
        public Attn(TorchGenerator g)
        {
            RegisterModule("q_proj", new Linear(4, 4, g));
            RegisterModule("v_proj", new Linear(4, 4, g));
        }

        public override Tensor Forward(Tensor input) => throw new InvalidOperationException("structure only");
    }
}
