using BenchmarkDotNet.Attributes;
using LoRA.Managed.Models;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;
using MathNet.Numerics.LinearAlgebra;

namespace LoRA.Managed.Benchmarks.Kernels;

/// <summary>
/// Question: how much faster is <see cref="Gemm"/> than the naive i-j-k twin and than Math.NET's managed
/// dense multiply, on the shapes the MLP actually runs and on squares? All three run on one thread, so
/// the figures compare kernels, not thread pools. 1024² is left out here: one naive call takes several
/// seconds; QuickBench times the naive twin on a band of rows for that shape instead.
/// </summary>
[Config(typeof(ShortRunConfig))]
public class GemmBenchmarks
{
    private float[] _a = [], _b = [], _c = [];
    private Matrix<float> _ma = null!, _mb = null!, _mc = null!;
    private int _savedThreads;

    /// <summary>The MLP shapes at batch 64, then 256² and 512².</summary>
    public static IEnumerable<GemmShape> Shapes() =>
        GemmShape.Mlp()
            .Concat([new GemmShape(256, 256, 256, false, false), new GemmShape(512, 512, 512, false, false)]);

    /// <summary>The product measured.</summary>
    [ParamsSource(nameof(Shapes))]
    public GemmShape Shape { get; set; } = null!;

    /// <summary>Random operands; Math.NET gets copies in its own (column-major) storage, pinned to its managed provider
    /// and one thread.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var s = Shape;
        (_a, _b, _c) = s.RandomOperands();
        _savedThreads = ComputeThreads.Max;
        ComputeThreads.Max = 1;

        MathNet.Numerics.Control.UseManaged();
        MathNet.Numerics.Control.UseSingleThread();
        // Stored shapes: A is m×k (k×m when transposed), B is k×n (n×k when transposed).
        _ma = Matrix<float>.Build.DenseOfRowMajor(s.TransA ? s.K : s.M, s.TransA ? s.M : s.K, _a);
        _mb = Matrix<float>.Build.DenseOfRowMajor(s.TransB ? s.N : s.K, s.TransB ? s.K : s.N, _b);
        _mc = Matrix<float>.Build.Dense(s.M, s.N);
    }

    /// <summary>Restores the thread count.</summary>
    [GlobalCleanup]
    public void Cleanup() => ComputeThreads.Max = _savedThreads;

    /// <summary>The naive i-j-k triple loop.</summary>
    [Benchmark(Baseline = true)]
    public void Naive()
    {
        var s = Shape;
        GemmReference.Multiply(s.TransA, s.TransB, s.M, s.N, s.K, 1f, _a, s.Lda, _b, s.Ldb, 0f, _c, s.N);
    }

    /// <summary>Our packed, register-blocked GEMM.</summary>
    [Benchmark]
    public void Ours()
    {
        var s = Shape;
        Gemm.Multiply(s.TransA, s.TransB, s.M, s.N, s.K, 1f, _a, s.Lda, _b, s.Ldb, 0f, _c, s.N);
    }

    /// <summary>Math.NET Numerics' managed provider, with its transpose-aware multiply for the same
    /// op(A)·op(B).</summary>
    [Benchmark]
    public void MathNetManaged()
    {
        var s = Shape;
        if (s.TransA && s.TransB) _ma.TransposeThisAndMultiply(_mb.Transpose(), _mc);
        else if (s.TransA) _ma.TransposeThisAndMultiply(_mb, _mc);
        else if (s.TransB) _ma.TransposeAndMultiply(_mb, _mc);
        else _ma.Multiply(_mb, _mc);
    }
}
