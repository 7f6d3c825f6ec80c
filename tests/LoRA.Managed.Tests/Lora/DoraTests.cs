using LoRA.Managed.Autograd;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using LoRA.Managed.Tests.Autograd;
using static LoRA.Managed.Tests.Lora.LoraTestHelpers;

namespace LoRA.Managed.Tests.Lora;

/// <summary>DoRA on one layer: initial no-op, the forward against the materialised weight, gradients by finite
/// differences (the norm frozen, as PEFT detaches it), merge and unmerge, on Linear and Conv1D layouts.</summary>
public class DoraTests
{
    private static Linear Base(int inF, int outF, bool conv1d, TorchGenerator g)
    {
        if (!conv1d) return new Linear(inF, outF, g);
        var lin = Linear.Empty(inF, outF, bias: true, fanInFanOut: true);
        g.FillUniform(lin.Weight.Data, -0.5f, 0.5f);
        g.FillUniform(lin.Bias!.Data, -0.5f, 0.5f);
        return lin;
    }

    private static LoraLinear Make(int inF, int outF, bool conv1d, float dropout = 0f, ulong seed = 7)
    {
        var g = new TorchGenerator(seed);
        var layer = new LoraLinear(Base(inF, outF, conv1d, g), "probe");
        layer.AddAdapter("default", new LoraConfig { Rank = 3, Alpha = 6, UseDora = true, Dropout = dropout }, g);
        return layer;
    }

    /// <summary>Non-trivial B and a magnitude away from its initial norm, as after training.</summary>
    private static void Randomise(LoraLinear layer, ulong seed)
    {
        var g = new TorchGenerator(seed);
        g.FillUniform(layer.LoraA["default"].Weight.Data, -1f, 1f);
        g.FillUniform(layer.LoraB["default"].Weight.Data, -1f, 1f);
        Span<float> m = layer.LoraMagnitude!["default"].Weight.Data;
        for (int j = 0; j < m.Length; j++) m[j] *= 0.7f + 0.6f * g.Rand(1, 1)[0];
    }

    /// <summary>W (out, in) in double from the base's stored layout.</summary>
    private static double[,] OutIn(Linear lin)
    {
        int o = lin.OutFeatures, n = lin.InFeatures;
        var w = new double[o, n];
        for (int j = 0; j < o; j++)
            for (int i = 0; i < n; i++) w[j, i] = lin.FanInFanOut ? lin.Weight[i, j] : lin.Weight[j, i];
        return w;
    }

    /// <summary>m/‖W + sBA‖ ⊙ (W + sBA), (out, in), naively in double.</summary>
    private static double[,] DoraWeight(LoraLinear layer)
    {
        Linear lin = layer.BaseLayer;
        Tensor a = layer.LoraA["default"].Weight, b = layer.LoraB["default"].Weight,
            m = layer.LoraMagnitude!["default"].Weight;
        double s = layer.Scale("default");
        var w = OutIn(lin);
        for (int j = 0; j < lin.OutFeatures; j++)
        {
            double norm = 0;
            for (int i = 0; i < lin.InFeatures; i++)
            {
                double d = 0;
                for (int k = 0; k < a.Shape[0]; k++) d += (double)b[j, k] * a[k, i];
                w[j, i] += s * d;
                norm += w[j, i] * w[j, i];
            }
            for (int i = 0; i < lin.InFeatures; i++) w[j, i] *= m[j] / Math.Sqrt(norm);
        }
        return w;
    }

    private static double[,] Apply(double[,] w, Tensor? bias, Tensor x)
    {
        int rows = x.Shape[0], o = w.GetLength(0), n = w.GetLength(1);
        var y = new double[rows, o];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < o; j++)
            {
                double acc = bias is null ? 0 : bias[j];
                for (int i = 0; i < n; i++) acc += w[j, i] * x[r, i];
                y[r, j] = acc;
            }
        return y;
    }

    [Test]
    public void UnderNoGradNothingIsRecordedEvenWithATrainingBias()
    {
        var g = new TorchGenerator(7);
        var layer = new LoraLinear(Base(7, 5, conv1d: false, g), "probe");
        layer.AddAdapter("default", new LoraConfig { Rank = 3, Alpha = 6, UseDora = true, Bias = LoraBias.All }, g);
        layer.BaseLayer.Bias!.RequiresGrad = true;   // bias = "all": the base bias trains
        Assert.That(layer.BaseLayer.Bias!.RequiresGrad, "the base bias trains here");
        var x = new Tensor(3, 7);
        new TorchGenerator(2).FillNormal(x.Data);
        Tape.Current.Clear();
        using (Tape.NoGrad()) layer.Forward(x);
        Assert.That(Tape.Current.Count, Is.Zero, "grad mode is off: no op on the tape");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void ANewAdapterChangesNothingAndItsMagnitudeIsTheRowNorm(bool conv1d)
    {
        var layer = Make(9, 5, conv1d);
        var w = OutIn(layer.BaseLayer);
        Tensor m = layer.LoraMagnitude!["default"].Weight;
        Assert.That(layer.NamedParameters().Select(p => p.Key), Does.Contain("lora_magnitude_vector.default.weight"));
        Assert.That(m.Shape, Is.EqualTo(new[] { 5 }));
        for (int j = 0; j < 5; j++)
        {
            double norm = Math.Sqrt(Enumerable.Range(0, 9).Sum(i => w[j, i] * w[j, i]));
            Assert.That(m[j], Is.EqualTo(norm).Within(1e-6 * norm), $"row {j}");
        }
        var x = Random(new TorchGenerator(3), 7, 9);
        Tensor y = layer.Forward(x);
        layer.AdaptersDisabled = true;
        Assert.That(MaxAbsDiff(y, layer.Forward(x)), Is.LessThan(1e-6f));
    }

    [TestCase(1, 9, 5, false)]
    [TestCase(7, 65, 33, false)]
    [TestCase(7, 63, 129, true)]
    [TestCase(1, 7, 65, true)]
    public void ForwardEqualsTheMaterialisedDoraWeight(int rows, int inF, int outF, bool conv1d)
    {
        var layer = Make(inF, outF, conv1d);
        Randomise(layer, 11);
        var x = Random(new TorchGenerator(3), rows, inF);
        Tensor y = layer.Forward(x);
        var want = Apply(DoraWeight(layer), layer.BaseLayer.Bias, x);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < outF; j++)
                Assert.That(y[r, j], Is.EqualTo(want[r, j]).Within(2e-5 * (1 + Math.Abs(want[r, j]))), $"[{r},{j}]");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void DroppedInputFollowsPeftsVariant(bool conv1d)
    {
        // PEFT's DoraLinearVariant with dropout while training: W·x + b + (g − 1)⊙W·x' + g⊙s·B·A·x'.
        var layer = Make(9, 5, conv1d);
        Randomise(layer, 12);
        var g = new TorchGenerator(4);
        Tensor x = Random(g, 7, 9), dropped = Random(g, 7, 9);
        Linear lin = layer.BaseLayer;
        Tensor y = Dora.Forward(x, dropped, lin, layer.LoraA["default"].Weight, layer.LoraB["default"].Weight,
            layer.LoraMagnitude!["default"].Weight, (float)layer.Scale("default"));
        var plain = OutIn(lin);
        var dora = DoraWeight(layer);
        var baseX = Apply(plain, lin.Bias, x);
        var baseDropped = Apply(plain, null, dropped);
        var doraDropped = Apply(dora, null, dropped);
        for (int r = 0; r < 7; r++)
            for (int j = 0; j < 5; j++)
            {
                // g⊙(W + sBA)x' = dora x'; (g − 1)⊙W x' + g⊙sBA x' = dora x' − W x'.
                double want = baseX[r, j] + doraDropped[r, j] - baseDropped[r, j];
                Assert.That(y[r, j], Is.EqualTo(want).Within(2e-5 * (1 + Math.Abs(want))), $"[{r},{j}]");
            }
    }

    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    [TestCase(true, true)]
    public void GradientsMatchFiniteDifferencesWithTheNormFrozen(bool conv1d, bool withDropout)
    {
        var g = new TorchGenerator(21);
        Linear lin = Base(6, 4, conv1d, g);
        Tensor a = GradCheck.Param(g, 2, 6), b = GradCheck.Param(g, 4, 2), x = GradCheck.Param(g, 3, 6);
        Tensor x2 = GradCheck.Param(g, 3, 6);
        var m = new Tensor(4) { RequiresGrad = true };
        g.FillUniform(m.Data, 0.5f, 2f);
        var norm = new Tensor(4);
        Dora.FillWeightNorm(lin.Weight, conv1d, a, b, 1.5f, norm.Data);   // frozen, as PEFT detaches it
        Tensor Loss() => GradCheck.WeightedSum(Dora.Forward(x, withDropout ? x2 : null, lin, a, b, m, 1.5f, norm));
        var inputs = new List<Tensor> { x, a, b, m, lin.Weight, lin.Bias! };
        if (withDropout) inputs.Add(x2);
        GradCheck.Check(Loss, inputs);
    }

    [Test]
    public void TheMagnitudeGradientMatchesFiniteDifferencesThroughTheLayer()
    {
        // The norm does not depend on m, so the layer's own forward (norm recomputed) gives the true derivative.
        var layer = Make(8, 5, conv1d: true);
        Randomise(layer, 13);
        var x = Random(new TorchGenerator(5), 4, 8);
        Tensor m = layer.LoraMagnitude!["default"].Weight;
        GradCheck.Check(() => GradCheck.WeightedSum(layer.Forward(x)), [m]);
    }

    [TestCase(false)]
    [TestCase(true)]
    public void MergeFoldsTheDoraWeightAndUnmergeRestoresTheBaseBitForBit(bool conv1d)
    {
        var layer = Make(9, 5, conv1d);
        Randomise(layer, 14);
        float[] original = layer.BaseLayer.Weight.Data.ToArray();
        var x = Random(new TorchGenerator(6), 7, 9);
        Tensor adapted = layer.Forward(x);
        var want = DoraWeight(layer);
        layer.Merge();
        for (int j = 0; j < 5; j++)
            for (int i = 0; i < 9; i++)
            {
                float have = conv1d ? layer.BaseLayer.Weight[i, j] : layer.BaseLayer.Weight[j, i];
                Assert.That(have, Is.EqualTo(want[j, i]).Within(1e-6 * (1 + Math.Abs(want[j, i]))), $"[{j},{i}]");
            }
        Assert.That(MaxAbsDiff(layer.Forward(x), adapted), Is.LessThan(1e-5f));
        layer.Unmerge();
        Assert.That(layer.BaseLayer.Weight.Data.ToArray(), Is.EqualTo(original));
        Assert.That(MaxAbsDiff(layer.Forward(x), adapted), Is.Zero);
    }
}
