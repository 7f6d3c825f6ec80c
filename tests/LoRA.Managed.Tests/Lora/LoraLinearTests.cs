using LoRA.Managed.Autograd;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using static LoRA.Managed.Tests.Lora.LoraTestHelpers;

namespace LoRA.Managed.Tests.Lora;

/// <summary>The adapter layer: forward, gradients, initialisations, merging and named adapters.</summary>
public class LoraLinearTests
{
    private static LoraLinear Make(int inF, int outF, LoraConfig config, ulong seed = 7)
    {
        var g = new TorchGenerator(seed);
        var layer = new LoraLinear(new Linear(inF, outF, g), "probe");
        layer.AddAdapter("default", config, g);
        return layer;
    }

    private static void Randomise(LoraLinear layer, string adapter, ulong seed)
    {
        var g = new TorchGenerator(seed);
        g.FillUniform(layer.LoraA[adapter].Weight.Data, -1f, 1f);
        g.FillUniform(layer.LoraB[adapter].Weight.Data, -1f, 1f);
    }

    [Test]
    public void NamesFollowPeft()
    {
        var layer = Make(6, 4, new LoraConfig { Rank = 2 });
        var names = layer.NamedParameters().Select(p => p.Key).ToList();
        Assert.That(names,
            Is.EqualTo(new[] { "base_layer.weight", "base_layer.bias", "lora_A.default.weight",
                "lora_B.default.weight" }));
        Assert.That(layer.LoraA["default"].Weight.Shape, Is.EqualTo(new[] { 2, 6 }));
        Assert.That(layer.LoraB["default"].Weight.Shape, Is.EqualTo(new[] { 4, 2 }));
    }

    [TestCase(LoraScaling.Alpha, 3.0, 2, 3.0)]
    [TestCase(LoraScaling.AlphaOverRank, 8.0, 4, 2.0)]
    [TestCase(LoraScaling.RsLora, 8.0, 4, 4.0)]
    public void ScaleFollowsTheRule(LoraScaling scaling, double alpha, int rank, double expected) =>
        Assert.That(new LoraConfig { Alpha = alpha, Rank = rank, Scaling = scaling }.Scale,
            Is.EqualTo(expected).Within(1e-12));

    [Test]
    public void UseRsLoraMapsToScaling()
    {
        Assert.That(new LoraConfig { UseRsLora = true }.Scaling, Is.EqualTo(LoraScaling.RsLora));
        Assert.That(new LoraConfig { Scaling = LoraScaling.RsLora, UseRsLora = false }.Scaling,
            Is.EqualTo(LoraScaling.AlphaOverRank));
    }

    [TestCase(1, 9, 5)]
    [TestCase(7, 65, 33)]
    public void LowRankForwardEqualsMaterialisedWeight(int batch, int inF, int outF)
    {
        var layer = Make(inF, outF, new LoraConfig { Rank = 3, Alpha = 1.5, Scaling = LoraScaling.Alpha });
        Randomise(layer, "default", 11);
        var x = Random(new TorchGenerator(3), batch, inF);
        Tensor y = layer.Forward(x);
        var m = Materialise(layer.BaseLayer.Weight, layer.LoraA["default"].Weight, layer.LoraB["default"].Weight, 1.5);
        for (int n = 0; n < batch; n++)
            for (int o = 0; o < outF; o++)
            {
                double e = layer.BaseLayer.Bias![o];
                for (int i = 0; i < inF; i++) e += x[n, i] * m[o, i];
                Assert.That(y[n, o], Is.EqualTo(e).Within(1e-4 * (1 + Math.Abs(e))), $"y[{n},{o}]");
            }
    }

    [Test]
    public void GradientsReachBothFactorsAndMatchFiniteDifferences()
    {
        var layer = Make(5, 4, new LoraConfig { Rank = 2, Alpha = 3, Scaling = LoraScaling.AlphaOverRank });
        Randomise(layer, "default", 21);
        var g = new TorchGenerator(4);
        var x = Random(g, 3, 5);
        x.RequiresGrad = true;
        var r = Random(g, 3, 4);
        Tape.Current.Clear();
        WeightedSum(layer.Forward(x), r).Backward();

        Parameter a = layer.LoraA["default"].Weight, b = layer.LoraB["default"].Weight;
        Assert.That(layer.BaseLayer.Weight.HasGrad, Is.False, "the frozen base weight must get no gradient");
        Assert.That(layer.BaseLayer.Bias!.HasGrad, Is.False, "the frozen base bias must get no gradient");
        // The loss is linear in each of A, B and x separately, so a central difference has no truncation
        // error; what remains is float rounding of the loss (~1e-7·|loss|/eps).
        foreach (var (name, t) in new (string, Tensor)[] { ("lora_A", a), ("lora_B", b), ("x", x) })
        {
            float[] analytic = t.Grad.ToArray();
            Assert.That(analytic.Any(v => v != 0f), $"{name} got no gradient");
            for (int i = 0; i < t.Count; i++)
            {
                const float eps = 1e-2f;
                float keep = t[i];
                float lp, lm;
                using (Tape.NoGrad())
                {
                    t[i] = keep + eps; lp = WeightedSum(layer.Forward(x), r).Item();
                    t[i] = keep - eps; lm = WeightedSum(layer.Forward(x), r).Item();
                }
                t[i] = keep;
                float numeric = (lp - lm) / (2 * eps);
                Assert.That(analytic[i], Is.EqualTo(numeric).Within(2e-3f + 1e-3f * Math.Abs(numeric)),
                    $"∂{name}[{i}]");
            }
        }
    }

    [Test]
    public void DefaultInitHasZeroDeltaAndPeftBound()
    {
        var layer = Make(50, 7, new LoraConfig { Rank = 4, Init = LoraInit.Default });
        Assert.That(layer.LoraB["default"].Weight.Array, Is.All.EqualTo(0f));
        Assert.That(layer.DeltaWeight("default").Array, Is.All.EqualTo(0f));
        float bound = 1f / MathF.Sqrt(50);
        var a = layer.LoraA["default"].Weight.Array;
        Assert.That(a, Is.All.InRange(-bound, bound));
        Assert.That(a.Max() - a.Min(), Is.GreaterThan(1.5f * bound), "A should spread over ±1/√in");
    }

    [Test]
    public void GaussianInitHasStdOneOverRank()
    {
        var layer = Make(400, 10, new LoraConfig { Rank = 5, Init = LoraInit.Gaussian });
        var a = layer.LoraA["default"].Weight.Array;
        double mean = a.Average(), std = Math.Sqrt(a.Select(v => (v - mean) * (v - mean)).Average());
        Assert.That(std, Is.EqualTo(0.2).Within(0.01));
        Assert.That(layer.LoraB["default"].Weight.Array, Is.All.EqualTo(0f));
    }

    [Test]
    public void SvdInitFactorsGiveTheTruncatedWeightAndLeaveWUnchanged()
    {
        var g = new TorchGenerator(9);
        var linear = new Linear(12, 8, g);
        float[] original = linear.Weight.Array.ToArray();
        var layer = new LoraLinear(linear, "probe");
        layer.AddAdapter("default",
            new LoraConfig { Rank = 3, Alpha = 1, Scaling = LoraScaling.Alpha, Init = LoraInit.Svd }, g);
        Assert.That(linear.Weight.Array, Is.EqualTo(original));
        var wr = LowRank.Approximate(linear.Weight, 3).Approximation;
        var delta = layer.DeltaWeight("default");
        Assert.That(MaxAbsDiff(delta, wr), Is.LessThan(1e-6f), "B·A = W_r");
    }

    [TestCase(LoraScaling.AlphaOverRank, 16.0)]
    [TestCase(LoraScaling.Alpha, 0.5)]
    public void PissaLeavesTheFunctionUnchangedAtInit(LoraScaling scaling, double alpha)
    {
        var g = new TorchGenerator(9);
        var linear = new Linear(12, 8, g);
        var x = Random(new TorchGenerator(2), 5, 12);
        Tensor before = linear.Forward(x);
        var wr = LowRank.Approximate(linear.Weight, 3).Approximation;
        var layer = new LoraLinear(linear, "probe");
        var config = new LoraConfig { Rank = 3, Alpha = alpha, Scaling = scaling, Init = LoraInit.Pissa };
        layer.AddAdapter("default", config, g);
        Assert.That(MaxAbsDiff(layer.Forward(x), before), Is.LessThan(1e-5f));
        Assert.That(MaxAbsDiff(layer.DeltaWeight("default"), wr), Is.LessThan(1e-5f), "scale·B·A = W_r");
        Assert.That(linear.Weight[0], Is.Not.EqualTo(before[0]), "the base holds the residual");
    }

    [Test]
    public void MergeThenUnmergeRestoresTheWeightExactly()
    {
        var layer = Make(33, 17, new LoraConfig { Rank = 4, Alpha = 2 });
        Randomise(layer, "default", 5);
        var x = Random(new TorchGenerator(8), 6, 33);
        float[] w0 = layer.BaseLayer.Weight.Array.ToArray();
        Tensor unmerged = layer.Forward(x);
        layer.Merge();
        Assert.That(layer.IsMerged);
        Tensor merged = layer.Forward(x);
        Assert.That(MaxAbsDiff(merged, unmerged), Is.LessThan(1e-5f));
        Assert.That(layer.BaseLayer.Weight.Array, Is.Not.EqualTo(w0));
        layer.Unmerge();
        Assert.That(layer.BaseLayer.Weight.Array, Is.EqualTo(w0), "unmerge is exact");
        Assert.Throws<InvalidOperationException>(() => layer.Unmerge());
    }

    [Test]
    public void RankOutOfRangeNamesModuleAndShape()
    {
        var g = new TorchGenerator(1);
        var layer = new LoraLinear(new Linear(6, 3, g), "layers.7");
        var ex = Assert.Throws<ArgumentException>(() => layer.AddAdapter("default", new LoraConfig { Rank = 4 }, g));
        Assert.That(ex!.Message, Does.Contain("layers.7").And.Contain("[3, 6]"));
        Assert.Throws<ArgumentException>(() => layer.AddAdapter("default", new LoraConfig { Rank = 0 }, g));
    }

    [Test]
    public void NamedAdaptersCanBeAddedSwitchedAndDisabled()
    {
        var layer = Make(6, 5, new LoraConfig { Rank = 2 });
        layer.AddAdapter("other", new LoraConfig { Rank = 3, Alpha = 1, Scaling = LoraScaling.Alpha },
            new TorchGenerator(2));
        Randomise(layer, "default", 1);
        Randomise(layer, "other", 2);
        var x = Random(new TorchGenerator(3), 2, 6);
        Tensor baseOnly = layer.BaseLayer.Forward(x);
        Assert.That(layer.ActiveAdapter, Is.EqualTo("default"));
        Tensor yDefault = layer.Forward(x);
        layer.SetActiveAdapter("other");
        Tensor yOther = layer.Forward(x);
        Assert.That(MaxAbsDiff(yDefault, yOther), Is.GreaterThan(1e-3f));
        Assert.That(MaxAbsDiff(yDefault, baseOnly), Is.GreaterThan(1e-3f));
        layer.AdaptersDisabled = true;
        Assert.That(MaxAbsDiff(layer.Forward(x), baseOnly), Is.EqualTo(0f));
        layer.AdaptersDisabled = false;
        Assert.That(MaxAbsDiff(layer.Forward(x), yOther), Is.EqualTo(0f));
        Assert.Throws<KeyNotFoundException>(() => layer.SetActiveAdapter("missing"));
        Assert.Throws<ArgumentException>(() => layer.AddAdapter("other", new LoraConfig { Rank = 1 },
            new TorchGenerator(1)));
        Assert.That(layer.NamedParameters().Select(p => p.Key),
            Does.Contain("lora_A.other.weight").And.Contain("lora_B.other.weight"));
    }

    [Test]
    public void DisabledWhileMergedStillComputesTheBaseAlone()
    {
        var layer = Make(6, 5, new LoraConfig { Rank = 2 });
        Randomise(layer, "default", 1);
        var x = Random(new TorchGenerator(3), 2, 6);
        Tensor baseOnly = layer.BaseLayer.Forward(x);
        layer.Merge();
        layer.AdaptersDisabled = true;
        Assert.That(MaxAbsDiff(layer.Forward(x), baseOnly), Is.EqualTo(0f));
    }

    [Test]
    public void DropoutAppliesToTheAdapterInputOnlyWhileTraining()
    {
        var layer = Make(40, 6, new LoraConfig { Rank = 2, Dropout = 0.5f });
        Randomise(layer, "default", 1);
        var x = Random(new TorchGenerator(3), 4, 40);
        layer.Eval();
        Tensor e1 = layer.Forward(x), e2 = layer.Forward(x);
        Assert.That(MaxAbsDiff(e1, e2), Is.EqualTo(0f));
        layer.Train();
        Tensor t1 = layer.Forward(x);
        Assert.That(MaxAbsDiff(t1, e1), Is.GreaterThan(1e-3f), "training forward drops adapter inputs");
        layer.AdaptersDisabled = true;
        Assert.That(MaxAbsDiff(layer.Forward(x), layer.BaseLayer.Forward(x)), Is.EqualTo(0f),
            "the base path has no dropout");
    }
}
