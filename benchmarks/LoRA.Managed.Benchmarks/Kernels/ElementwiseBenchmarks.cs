using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Benchmarks.Kernels;

/// <summary>
/// Question: do the SIMD elementwise kernels beat their scalar <see cref="ElementwiseReference"/> twins,
/// and do they allocate? Sizes are the MLP's at batch 64: ReLU backward over the first hidden layer
/// (64×512), log-softmax over the logits (64×10), one Adam update of the first weight (512×784).
/// Each category has its own baseline (the scalar twin).
/// </summary>
[Config(typeof(ShortRunConfig))]
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class ElementwiseBenchmarks
{
    private const int Batch = 64, Hidden = 512, Classes = 10, WeightCount = 512 * 784;
    private float[] _y = [], _dy = [], _dx = [];
    private float[] _logits = [], _logProbs = [];
    private float[] _param = [], _grad = [], _m = [], _v = [];

    /// <summary>Random inputs (about half the ReLU outputs zero, as after a real forward).</summary>
    [GlobalSetup]
    public void Setup()
    {
        var g = new TorchGenerator(3);
        _y = new float[Batch * Hidden]; _dy = new float[Batch * Hidden]; _dx = new float[Batch * Hidden];
        g.FillUniform(_y, -1f, 1f);
        for (int i = 0; i < _y.Length; i++) _y[i] = Math.Max(_y[i], 0f);
        g.FillUniform(_dy, -1f, 1f);
        _logits = new float[Batch * Classes]; _logProbs = new float[Batch * Classes];
        g.FillUniform(_logits, -20f, 20f);
        _param = new float[WeightCount]; _grad = new float[WeightCount]; _m = new float[WeightCount];
        _v = new float[WeightCount];
        g.FillUniform(_param, -0.05f, 0.05f);
        g.FillUniform(_grad, -1e-3f, 1e-3f);
    }

    /// <summary>Scalar ReLU backward.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("ReluBackward")]
    public void ReluBackwardReference() => ElementwiseReference.ReluBackward(_y, _dy, _dx);

    /// <summary>SIMD ReLU backward.</summary>
    [Benchmark, BenchmarkCategory("ReluBackward")]
    public void ReluBackward() => Relu.Backward(_y, _dy, _dx);

    /// <summary>Scalar row-wise log-softmax.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("LogSoftmax")]
    public void LogSoftmaxReference() => ElementwiseReference.LogSoftmaxRows(_logits, _logProbs, Batch, Classes);

    /// <summary>Row-wise log-softmax on TensorPrimitives.</summary>
    [Benchmark, BenchmarkCategory("LogSoftmax")]
    public void LogSoftmaxRows() => LogSoftmax.Rows(_logits, _logProbs, Batch, Classes);

    // Adam at step 10 with PyTorch's defaults: stepSize = lr/(1−β₁¹⁰), bias2Sqrt = √(1−β₂¹⁰).
    private static readonly float StepSize = (float)(1e-3 / (1 - Math.Pow(0.9, 10)));
    private static readonly float Bias2Sqrt = (float)Math.Sqrt(1 - Math.Pow(0.999, 10));

    /// <summary>Scalar Adam update of 512×784 parameters.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("Adam")]
    public void AdamReference() =>
        ElementwiseReference.AdamStep(_param, _grad, _m, _v, StepSize, 0.1f, 0.999f, 0.001f, Bias2Sqrt, 1e-8f, 0f, 1f);

    /// <summary>Fused SIMD Adam update of 512×784 parameters.</summary>
    [Benchmark, BenchmarkCategory("Adam")]
    public void Adam() =>
        AdamUpdate.Step(_param, _grad, _m, _v, StepSize, 0.1f, 0.999f, 0.001f, Bias2Sqrt, 1e-8f, 0f, 1f);
}
