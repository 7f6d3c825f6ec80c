using LoRA.Managed.Autograd;
using LoRA.Managed.Autograd.Ops;
using LoRA.Managed.Kernels;
using LoRA.Managed.Models;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Autograd;

/// <summary>
/// <see cref="Functional.LinearRelu"/>, a Linear and its ReLU as one op (the bias and ReLU applied by the product's
/// threads, <see cref="GemmEpilogue"/>; the mask and bias gradient in one pass,
/// <see cref="Relu.BackwardWithBiasGrad"/>), against the separate passes it replaces and the two ops, bit for bit,
/// on awkward shapes, both weight layouts and one and two threads; the epilogue on NaN, ±0, infinities and
/// subnormals; <see cref="Sequential"/> taking it; and a finite-difference check.
/// </summary>
[NonParallelizable]
public class LinearReluTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        (int, int, int)[] shapes = [(1, 1, 1), (7, 63, 65), (65, 129, 7), (63, 65, 129), (129, 7, 63), (64, 784, 512),
            (64, 512, 256), (300, 64, 96)];
        foreach (var (n, inF, outF) in shapes)
            foreach (bool inOut in new[] { false, true })
                foreach (bool bias in new[] { true, false })
                    foreach (int threads in new[] { 1, 2 })
                        yield return new TestCaseData(n, inF, outF, inOut, bias, threads);
    }

    [TestCaseSource(nameof(Cases))]
    public void FusedOpHasTheBitsOfLinearThenRelu(int n, int inF, int outF, bool inOut, bool bias, int threads)
    {
        using var scope = ComputeThreads.Use(threads);
        var want = Passes(n, inF, outF, inOut, bias);
        var unfused = Run(n, inF, outF, inOut, bias, fused: false);
        var fused = Run(n, inF, outF, inOut, bias, fused: true);
        string[] names = ["y", "dx", "dW", "db"];
        for (int i = 0; i < names.Length; i++)
        {
            Assert.That(Bits(fused[i]), Is.EqualTo(Bits(want[i])), $"fused {names[i]}");
            Assert.That(Bits(unfused[i]), Is.EqualTo(Bits(want[i])), $"linear then relu {names[i]}");
        }
        if (fused[0].Length > 1)
            Assert.That(fused[0].Count(v => v == 0f), Is.GreaterThan(0).And.LessThan(fused[0].Length),
                "both sides of 0");
    }

    // y, dx, dW, db of WeightedSum(ReLU(linear(x))) from fixed inputs, the ReLU fused or as its own op.
    private static float[][] Run(int n, int inF, int outF, bool inOut, bool bias, bool fused)
    {
        var (x, w, b) = Inputs(n, inF, outF, inOut, bias);
        Tensor y = fused ? Functional.LinearRelu(x, w, b, inOut) : Functional.Relu(Functional.Linear(x, w, b, inOut));
        float[] values = y.Data.ToArray();
        GradCheck.WeightedSum(y).Backward();
        return [values, x.Grad.ToArray(), w.Grad.ToArray(), b is null ? [] : b.Grad.ToArray()];
    }

    // The same values as the separate passes the fused op replaced: the product alone, RowOps.AddBias, Relu.Forward;
    // backward Relu.Backward into a zero gradient, the two products and RowOps.AccumulateColumnSums.
    private static float[][] Passes(int n, int inF, int outF, bool inOut, bool bias)
    {
        var (x, w, b) = Inputs(n, inF, outF, inOut, bias);
        var y = new float[n * outF];
        Gemm.Multiply(false, !inOut, n, outF, inF, 1f, x.Data, inF, w.Data, inOut ? outF : inF, 0f, y, outF);
        if (b is not null) RowOps.AddBias(y, b.Data, n, outF);
        Relu.Forward(y, y);
        Tensor dy = GradCheck.Weights(y.Length);   // the gradient GradCheck.WeightedSum sends back
        var dz = new float[y.Length];
        Relu.Backward(y, dy.Data, dz, overwrite: true);
        float[] dx = new float[n * inF], dw = new float[inF * outF], db = bias ? new float[outF] : [];
        if (inOut)
        {
            Gemm.Multiply(false, true, n, inF, outF, 1f, dz, outF, w.Data, outF, 0f, dx, inF);
            Gemm.Multiply(true, false, inF, outF, n, 1f, x.Data, inF, dz, outF, 0f, dw, outF);
        }
        else
        {
            Gemm.Multiply(false, false, n, inF, outF, 1f, dz, outF, w.Data, inF, 0f, dx, inF);
            Gemm.Multiply(true, false, outF, inF, n, 1f, dz, outF, x.Data, inF, 0f, dw, inF);
        }
        if (bias) RowOps.AccumulateColumnSums(dz, n, outF, db);
        return [y, dx, dw, db];
    }

    // The same x, W and b for every variant of a case.
    private static (Tensor X, Tensor W, Tensor? B) Inputs(int n, int inF, int outF, bool inOut, bool bias)
    {
        var g = new TorchGenerator(7);
        Tensor x = GradCheck.Param(g, n, inF);
        Tensor w = inOut ? GradCheck.Param(g, inF, outF) : GradCheck.Param(g, outF, inF);
        return (x, w, bias ? GradCheck.Param(g, outF) : null);
    }

    private static int[] Bits(float[] v) => v.Select(BitConverter.SingleToInt32Bits).ToArray();

    [TestCase(1), TestCase(7), TestCase(63), TestCase(65), TestCase(129)]
    public void EpilogueTreatsSpecialValuesAsBiasAddThenRelu(int cols)
    {
        float[] special = [float.NaN, -0f, 0f, float.PositiveInfinity, float.NegativeInfinity, 1.4e-45f, -1.4e-45f,
            -3f, 2.5f, 1e-39f, -1e-39f];
        int rows = 3;
        var c = new float[rows * cols];
        var bias = new float[cols];
        for (int i = 0; i < c.Length; i++) c[i] = special[i % special.Length];
        for (int j = 0; j < cols; j++) bias[j] = special[(j * 5 + 3) % special.Length];
        foreach (bool relu in new[] { false, true })
        {
            float[] want = (float[])c.Clone(), got = (float[])c.Clone();
            RowOps.AddBias(want, bias, rows, cols);
            if (relu) Relu.Forward(want, want);
            unsafe
            {
                fixed (float* pb = bias)
                    // k = 0 with β = 1 leaves C as it is, so only the epilogue acts on it.
                    Gemm.MultiplyWithEpilogue(false, false, rows, cols, 0, 1f, [], 1, [], cols, 1f, got, cols,
                        new GemmEpilogue(pb, relu));
            }
            Assert.That(Bits(got), Is.EqualTo(Bits(want)), $"relu {relu}");
        }
    }

    [TestCase(1), TestCase(2)]
    public void AnOutputReadTwiceGetsBothGradientsBeforeTheMask(int threads)
    {
        // The fused backward masks ∂y in place: both readers must have added into it first, as in the unfused ops.
        using var scope = ComputeThreads.Use(threads);
        float[][] Grads(bool fused)
        {
            var g = new TorchGenerator(11);
            Tensor x = GradCheck.Param(g, 65, 63), w = GradCheck.Param(g, 129, 63), b = GradCheck.Param(g, 129);
            Tensor y = fused ? Functional.LinearRelu(x, w, b) : Functional.Relu(Functional.Linear(x, w, b));
            Functional.Add(GradCheck.WeightedSum(y, 1), GradCheck.WeightedSum(Functional.Scale(y, 3f), 2)).Backward();
            return [x.Grad.ToArray(), w.Grad.ToArray(), b.Grad.ToArray()];
        }
        float[][] want = Grads(fused: false), got = Grads(fused: true);
        for (int i = 0; i < want.Length; i++) Assert.That(Bits(got[i]), Is.EqualTo(Bits(want[i])), $"input {i}");
    }

    [Test]
    public void NoInputFeaturesGiveTheBiasOnEveryRow([Values(false, true)] bool relu)
    {
        // F.linear(x[3, 0], W[4, 0], b) is b on every row, and b's gradient the column sums of ∂y (masked by the ReLU).
        var x = new Tensor(3, 0) { RequiresGrad = true };
        var w = new Tensor(4, 0) { RequiresGrad = true };
        var b = new Tensor([1f, -2f, 3f, -0.5f], 4) { RequiresGrad = true };
        Tensor y = relu ? Functional.LinearRelu(x, w, b) : Functional.Linear(x, w, b);
        Assert.That(y.Shape, Is.EqualTo(new[] { 3, 4 }));
        float[] row = relu ? [1f, 0f, 3f, 0f] : [1f, -2f, 3f, -0.5f];
        Assert.That(y.Data.ToArray(), Is.EqualTo(row.Concat(row).Concat(row).ToArray()));
        GradCheck.WeightedSum(y).Backward();
        Tensor dy = GradCheck.Weights(12);   // the gradient GradCheck.WeightedSum sends back
        for (int j = 0; j < 4; j++)
        {
            float want = 0f;
            for (int i = 0; i < 3; i++) want += row[j] > 0f || !relu ? dy[i * 4 + j] : 0f;
            Assert.That(b.Grad[j], Is.EqualTo(want).Within(1e-6f), $"db[{j}]");
        }
    }

    [Test]
    public void SequentialRunsALinearAndItsReluAsOneOpWithTheSameBits()
    {
        var model = Mlp.Blog(new TorchGenerator(3));
        var g = new TorchGenerator(4);
        var x = new Tensor(5, 784);
        g.FillUniform(x.Data, 0f, 1f);
        int[] labels = [0, 3, 7, 1, 9];
        Tape.Current.Clear();
        Tensor loss = Functional.CrossEntropy(model.Forward(x), labels);
        Assert.That(Tape.Current.Count, Is.EqualTo(4), "two linear_relu, one linear, one cross_entropy");
        loss.Backward();
        var fused = model.Parameters().Select(p => p.Grad.ToArray()).ToList();
        model.ZeroGrad();
        Tensor h = x;
        var layers = model.Layers;
        for (int i = 1; i < layers.Count; i++)
        {
            var linear = (Linear)layers[i];
            h = Functional.Linear(h, linear.Weight, linear.Bias);
            if (i + 1 < layers.Count && layers[i + 1] is ReLU) { h = Functional.Relu(h); i++; }
        }
        Tensor unfusedLoss = Functional.CrossEntropy(h, labels);
        Assert.That(unfusedLoss.Item(), Is.EqualTo(loss.Item()));
        unfusedLoss.Backward();
        var unfused = model.Parameters().Select(p => p.Grad.ToArray()).ToList();
        for (int i = 0; i < fused.Count; i++) Assert.That(Bits(fused[i]), Is.EqualTo(Bits(unfused[i])), $"param {i}");

        // The benchmarks' switch back to separate passes (--fusion) computes the same bits through six ops.
        model.ZeroGrad();
        LinearOp.EpilogueDisabled = true;
        try
        {
            Tensor separate = Functional.CrossEntropy(model.Forward(x), labels);
            Assert.That(Tape.Current.Count, Is.EqualTo(6), "three linear, two relu, one cross_entropy");
            Assert.That(separate.Item(), Is.EqualTo(loss.Item()));
            separate.Backward();
        }
        finally { LinearOp.EpilogueDisabled = false; }
        var passes = model.Parameters().Select(p => p.Grad.ToArray()).ToList();
        for (int i = 0; i < fused.Count; i++) Assert.That(Bits(passes[i]), Is.EqualTo(Bits(fused[i])), $"param {i}");
    }

    [TestCase(1, 3, 2, false), TestCase(3, 5, 4, false), TestCase(3, 5, 4, true), TestCase(4, 17, 9, false)]
    public void GradientMatchesFiniteDifferences(int n, int inF, int outF, bool inOut)
    {
        // Pick the first seed whose pre-activations all keep clear of ReLU's kink at 0 by more than ε moves them.
        for (ulong seed = 1; ; seed++)
        {
            var g = new TorchGenerator(seed);
            Tensor x = GradCheck.Param(g, n, inF);
            Tensor w = inOut ? GradCheck.Param(g, inF, outF) : GradCheck.Param(g, outF, inF);
            Tensor b = GradCheck.Param(g, outF);
            float[] pre;
            using (Tape.NoGrad()) pre = Functional.Linear(x, w, b, inOut).Data.ToArray();
            if (pre.Min(MathF.Abs) < 0.1f || !pre.Any(v => v > 0) || !pre.Any(v => v < 0)) continue;
            GradCheck.Check(() => GradCheck.WeightedSum(Functional.LinearRelu(x, w, b, inOut)), [x, w, b]);
            return;
        }
    }
}
