using LoRA.Managed.Autograd;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Lora;

/// <summary>
/// OLoRA initialisation (PEFT's <c>init_lora_weights="olora"</c>, issue 15): B = Q[:, :r], A = R[:r] of W's QR, and
/// the base becomes W − scale·B·A, worked by hand on a 2×2 weight and checked on both orientations of W.
/// </summary>
public class OLoraInitTests
{
    private static LoraLinear Layer(float[] weight, int outF, int inF, LoraConfig config)
    {
        var linear = new Linear(inF, outF, new TorchGenerator(0), bias: false);
        weight.CopyTo(linear.Weight.Data);
        var layer = new LoraLinear(linear, "x");
        layer.AddAdapter("default", config, new TorchGenerator(1));
        return layer;
    }

    [Test]
    public void HandWorkedTwoByTwo()
    {
        // W = [[3, 1], [4, 2]]: q₁ = ±[0.6, 0.8] (|first column| = 5), R[0] = q₁ᵀW = ±[5, 2.2], so B·A = [[3, 1.32],
        // [4, 1.76]]; with α = 2, r = 1 the scale is 2 and the residual W − 2·B·A = [[−3, −1.64], [−4, −1.52]].
        var layer = Layer([3, 1, 4, 2], 2, 2,
            new LoraConfig { Rank = 1, Alpha = 2, Init = LoraInit.Olora, TargetModules = ["x"] });
        float[] b = layer.LoraB["default"].Weight.Data.ToArray(), a = layer.LoraA["default"].Weight.Data.ToArray();
        float sign = Math.Sign(b[0]);
        Assert.That(b, Is.EqualTo(new[] { 0.6f * sign, 0.8f * sign }).Within(1e-6));
        Assert.That(a, Is.EqualTo(new[] { 5f * sign, 2.2f * sign }).Within(1e-5));
        Assert.That(layer.BaseLayer.Weight.Data.ToArray(), Is.EqualTo(new[] { -3f, -1.64f, -4f, -1.52f }).Within(1e-5));
        using (Tape.NoGrad())
        {
            var x = new Tensor([1f, -2f], 1, 2);
            Assert.That(layer.Forward(x).Data.ToArray(), Is.EqualTo(new[] { 3f - 2f, 4f - 4f }).Within(1e-5),
                "unchanged at step 0");
        }
    }

    [TestCase(5, 3, 2)]   // tall: out > in
    [TestCase(3, 7, 3)]   // wide: out < in, r = min
    [TestCase(65, 63, 7)]
    public void FactorsAreOrthonormalAndTriangularAndTheFunctionIsUnchanged(int outF, int inF, int rank)
    {
        var g = new TorchGenerator(3);
        var w = new float[outF * inF];
        g.FillNormal(w, 0f, 1f);
        var config = new LoraConfig { Rank = rank, Alpha = 3, Init = LoraInit.Olora, TargetModules = ["x"] };
        var layer = Layer(w, outF, inF, config);
        float[] b = layer.LoraB["default"].Weight.Data.ToArray(), a = layer.LoraA["default"].Weight.Data.ToArray();
        for (int i = 0; i < rank; i++)
            for (int j = 0; j < rank; j++)
            {
                double dot = 0;
                for (int k = 0; k < outF; k++) dot += b[k * rank + i] * b[k * rank + j];
                Assert.That(dot, Is.EqualTo(i == j ? 1.0 : 0.0).Within(1e-5), $"QᵀQ[{i},{j}]");
                if (j < i) Assert.That(a[i * inF + j], Is.EqualTo(0f).Within(1e-5), $"R[{i},{j}] below the diagonal");
            }
        float[] residual = layer.BaseLayer.Weight.Data.ToArray();
        for (int i = 0; i < outF; i++)
            for (int j = 0; j < inF; j++)
            {
                double ba = 0;
                for (int k = 0; k < rank; k++) ba += b[i * rank + k] * a[k * inF + j];
                Assert.That(residual[i * inF + j] + config.Scale * ba, Is.EqualTo(w[i * inF + j]).Within(1e-5));
            }
    }

    // /usr/bin/python3 (torch 1.13): W[i, j] = cos(0.7·(i+1)·(j+1)) + 0.3·i in float64; Q, R = torch.linalg.qr(W);
    // W − 1.5·Q[:, :2]·R[:2], printed to 9 digits. The residual does not depend on the QR's sign choices.
    [TestCase(3, 5, new[] { -0.382421094, -0.0849835715, -0.218912893, 0.360297608, 0.346159486, -0.234983571,
        0.32111117, 0.378558808, -0.471147431, -0.453547473, -0.0475769477, -0.0548695893, 1.58878614, 0.521243909,
        0.556409523 })]
    [TestCase(5, 3, new[] { -0.382421094, -0.0849835715, -0.275843473, -0.234983571, 0.32111117, 0.321107842,
        -0.0475769477, -0.0548695893, 1.58436946, 0.0211111703, -0.837782939, -0.468367507, -0.131771656,
        -0.976951127, -0.137505934 })]
    public void ResidualMatchesTorchsQr(int outF, int inF, double[] expected)
    {
        var w = new float[outF * inF];
        for (int i = 0; i < outF; i++)
            for (int j = 0; j < inF; j++) w[i * inF + j] = (float)(Math.Cos(0.7 * (i + 1) * (j + 1)) + 0.3 * i);
        var layer = Layer(w, outF, inF,
            new LoraConfig { Rank = 2, Alpha = 3, Init = LoraInit.Olora, TargetModules = ["x"] });
        Assert.That(layer.BaseLayer.Weight.Data.ToArray(), Is.EqualTo(expected).Within(1e-5));
    }

    [Test]
    public void ConfigFileSaysOloraBothWays()
    {
        var config = new LoraConfig { Rank = 2, Init = LoraInit.Olora, TargetModules = ["x"] };
        string json = AdapterConfigFile.ToJson(config);
        Assert.That(json, Does.Contain("\"init_lora_weights\": \"olora\""));
        Assert.That(AdapterConfigFile.Parse(System.Text.Encoding.UTF8.GetBytes(json), "cfg").Init,
            Is.EqualTo(LoraInit.Olora));
    }

    [Test]
    public void Conv1DLayerIsRefused()
    {
        var linear = Linear.Empty(4, 6, fanInFanOut: true);
        var layer = new LoraLinear(linear, "c_attn");
        Assert.Throws<ArgumentException>(() =>
            layer.AddAdapter("default", new LoraConfig { Rank = 2, Init = LoraInit.Olora, TargetModules = ["c_attn"] },
                new TorchGenerator(1)));
    }
}
