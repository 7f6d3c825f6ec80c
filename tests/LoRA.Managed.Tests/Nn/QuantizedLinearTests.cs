using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;
using LoRA.Managed.Tests.Autograd;

namespace LoRA.Managed.Tests.Nn;

/// <summary>
/// <see cref="Linear.QuantizeWeight(BaseDType)"/> and <see cref="QuantizedGemm"/>: the product and input gradient, W
/// expanded while the GEMM packs it, match the reference twin (the whole weight dequantised, then a plain
/// double-precision matmul) on awkward shapes and every storage format, and are bitwise the float GEMM over the
/// dequantised W on one and on two threads; dX passes a finite-difference check; W gets no gradient; a training step
/// through it allocates nothing once warm.
/// </summary>
public class QuantizedLinearTests
{
    private static readonly BaseDType[] DTypes = Enum.GetValues<BaseDType>();

    private static float[] Rand(int n, int seed, float std)
    {
        var x = new float[n];
        new TorchGenerator((ulong)seed).FillNormal(x, 0f, std);
        return x;
    }

    private static IEnumerable<TestCaseData> Shapes()
    {
        int[] sizes = [1, 7, 63, 65, 129];
        foreach (BaseDType d in DTypes)
            foreach (int n in sizes)
                foreach (var (inF, outF) in new[] { (7, 65), (65, 7), (63, 129), (129, 63), (128, 1), (1, 129) })
                    yield return new TestCaseData(d, n, inF, outF);
        // Deeper than one KC = 256 block and wider than one NC = 2048 block of the GEMM, with ragged edges.
        foreach (BaseDType d in DTypes) yield return new TestCaseData(d, 65, 1100, 200);
        foreach (BaseDType d in DTypes) yield return new TestCaseData(d, 129, 300, 2113);
    }

    [TestCaseSource(nameof(Shapes))]
    public void ForwardAndInputGradientMatchTheReference(BaseDType dtype, int n, int inF, int outF)
    {
        var w = QuantizedMatrix.Quantize(Rand(outF * inF, 1, 0.05f), outF, inF, dtype);
        float[] x = Rand(n * inF, 2, 1f), dy = Rand(n * outF, 3, 1f);

        var y = new float[n * outF];
        QuantizedGemm.MultiplyTransposed(w, n, x, y);
        float[] yRef = QuantReference.MultiplyTransposed(w, n, x);
        AssertClose(y, yRef, inF, "y");

        float[] dx = Rand(n * inF, 4, 1f), start = (float[])dx.Clone();
        QuantizedGemm.MultiplyAccumulate(w, n, dy, dx);
        float[] dxRef = QuantReference.MultiplyByWeight(w, n, dy);
        for (int i = 0; i < dx.Length; i++) dxRef[i] += start[i];
        AssertClose(dx, dxRef, outF, "dx");
    }

    [TestCaseSource(nameof(Shapes))]
    public void BitwiseTheFloatGemmOverTheDequantisedWeightOnOneAndTwoThreads(BaseDType dtype, int n, int inF, int outF)
    {
        var w = QuantizedMatrix.Quantize(Rand(outF * inF, 1, 0.05f), outF, inF, dtype);
        float[] wf = QuantReference.Dequantize(w);
        float[] x = Rand(n * inF, 2, 1f), dy = Rand(n * outF, 3, 1f), dx0 = Rand(n * inF, 4, 1f);
        int saved = ComputeThreads.Max;
        try
        {
            foreach (int threads in new[] { 1, 2 })
            {
                ComputeThreads.Max = threads;
                var y = new float[n * outF];
                var yGemm = new float[n * outF];
                QuantizedGemm.MultiplyTransposed(w, n, x, y);
                if (n == 1) w.MultiplyVector(x, yGemm);
                else Gemm.Multiply(false, true, n, outF, inF, 1f, x, inF, wf, inF, 0f, yGemm, outF);
                Assert.That(y, Is.EqualTo(yGemm), $"y, {threads} threads");

                float[] dx = (float[])dx0.Clone(), dxGemm = (float[])dx0.Clone();
                QuantizedGemm.MultiplyAccumulate(w, n, dy, dx);
                if (n == 1) w.MultiplyVectorTransposedAccumulate(dy, dxGemm);
                else Gemm.Multiply(false, false, n, inF, outF, 1f, dy, outF, wf, inF, 1f, dxGemm, inF);
                Assert.That(dx, Is.EqualTo(dxGemm), $"dx, {threads} threads");
            }
        }
        finally { ComputeThreads.Max = saved; }
    }

    private static void AssertClose(float[] actual, float[] expected, int depth, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length));
        float tol = 2e-6f * depth + 1e-5f; // float32 summation over `depth` terms of size ~0.05
        for (int i = 0; i < actual.Length; i++)
            Assert.That(actual[i], Is.EqualTo(expected[i]).Within(tol + 1e-5f * Math.Abs(expected[i])),
                $"{what}[{i}]");
    }

    [TestCaseSource(nameof(Shapes))]
    public void BetaZeroWritesWhatAccumulatingIntoZerosGives(BaseDType dtype, int n, int inF, int outF)
    {
        var g = new TorchGenerator(11);
        var w = new float[outF * inF];
        var dy = new float[n * outF];
        g.FillNormal(w);
        g.FillNormal(dy);
        QuantizedMatrix q = QuantizedMatrix.Quantize(w, outF, inF, dtype);
        var accumulated = new float[n * inF];
        QuantizedGemm.MultiplyAccumulate(q, n, dy, accumulated);
        var written = Enumerable.Repeat(float.NaN, n * inF).ToArray();   // whatever was there is not read
        QuantizedGemm.MultiplyAccumulate(q, n, dy, written, beta: 0f);
        Assert.That(written, Is.EqualTo(accumulated));
    }

    // The stored weight in float32, [out, in], as the layer's products read it.
    private static Tensor Dequantized(Linear linear) => new(QuantReference.Dequantize(linear.QuantizedWeight!),
        linear.OutFeatures, linear.InFeatures);

    [TestCase(BaseDType.Nf4)]
    [TestCase(BaseDType.Int8)]
    [TestCase(BaseDType.Bf16)]
    public void LayerEqualsLinearOverTheDequantisedWeightIncludingConv1D(BaseDType dtype)
    {
        foreach (bool conv1d in new[] { false, true })
        {
            var linear = Linear.Empty(65, 7, bias: true, fanInFanOut: conv1d);
            new TorchGenerator(5).FillNormal(linear.Weight.Data, 0f, 0.1f);
            new TorchGenerator(6).FillNormal(linear.Bias!.Data, 0f, 0.1f);
            float[] original = linear.Weight.Data.ToArray();
            linear.QuantizeWeight(dtype);
            var x = new Tensor(Rand(3 * 4 * 65, 7, 1f), 3, 4, 65);
            Tensor y = linear.Forward(x);
            Tensor yRef = Functional.Linear(x, Dequantized(linear), linear.Bias);
            Assert.That(y.Shape, Is.EqualTo(new[] { 3, 4, 7 }));
            for (int i = 0; i < y.Count; i++) Assert.That(y[i], Is.EqualTo(yRef[i]).Within(1e-4f), $"y[{i}]");
            // Quantisation of the transposed file layout stores the same [out, in] map.
            float[] back = QuantReference.Dequantize(linear.QuantizedWeight!);
            for (int o = 0; o < 7; o++)
                for (int i = 0; i < 65; i++)
                {
                    float orig = conv1d ? original[i * 7 + o] : original[o * 65 + i];
                    Assert.That(back[o * 65 + i], Is.EqualTo(orig).Within(0.1f * 0.6f), $"W[{o},{i}]");
                }
        }
    }

    [TestCase(BaseDType.Nf4, 5)]
    [TestCase(BaseDType.Int8, 1)]
    [TestCase(BaseDType.F16, 7)]
    public void InputAndBiasGradientsPassFiniteDifferences(BaseDType dtype, int n)
    {
        var g = new TorchGenerator(9);
        var linear = Linear.Empty(65, 63);
        g.FillUniform(linear.Weight.Data, -0.2f, 0.2f);
        g.FillUniform(linear.Bias!.Data, -0.2f, 0.2f);
        linear.QuantizeWeight(dtype);
        Tensor x = GradCheck.Param(g, n, 65);
        GradCheck.Check(() => GradCheck.WeightedSum(linear.Forward(x)), new Tensor[] { x, linear.Bias! });
    }

    [Test]
    public void FrozenWeightHasNoParameterAndBadShapesAreNamed()
    {
        var q = Linear.Empty(8, 4, bias: false);
        q.QuantizeWeight(BaseDType.Nf4);
        Assert.That(q.Parameters(), Is.Empty);
        Assert.That(q.ToString(), Does.Contain("dtype=Nf4"));
        var ex = Assert.Throws<ArgumentException>(() => q.Forward(new Tensor(2, 9)));
        Assert.That(ex!.Message, Does.Contain("quantized_linear").And.Contain("[4, 8]"));
    }

    [Test]
    public void SteadyStateStepThroughAQuantisedLayerAllocatesNothing()
    {
        var g = new TorchGenerator(3);
        var base0 = new Linear(129, 65, g);
        var q = base0;
        q.QuantizeWeight(BaseDType.Nf4);
        var head = new Linear(65, 5, g);
        var opt = new AdamW(head.Parameters().Concat(q.Parameters()), 1e-3);
        var x = new Tensor(Rand(16 * 129, 4, 1f), 16, 129);
        var labels = new int[16];
        var arena = new TensorArena();
        int saved = ComputeThreads.Max;
        ComputeThreads.Max = 1;
        try
        {
            void Step()
            {
                using var scope = arena.Activate();
                opt.ZeroGrad();
                Functional.CrossEntropy(head.Forward(Functional.Relu(q.Forward(x))), labels).Backward();
                opt.Step();
            }
            Assert.That(SteadyState.AllocatedBytes(Step, 10), Is.Zero);
        }
        finally { ComputeThreads.Max = saved; }
    }
}
