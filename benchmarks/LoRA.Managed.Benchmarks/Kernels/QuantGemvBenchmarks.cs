using BenchmarkDotNet.Attributes;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Benchmarks.Kernels;

/// <summary>
/// Question (issue 16): does decoding (m = 1) get faster as the frozen weight shrinks? GPT-2-small's c_fc
/// (3072×768) times one token: the F32 GEMM (baseline) against <see cref="QuantizedMatrix.MultiplyVector"/> over each
/// storage format. Run: <c>dotnet run -c Release --project benchmarks/LoRA.Managed.Benchmarks -- --filter
/// '*QuantGemv*'</c>.
/// </summary>
[Config(typeof(ShortRunConfig))]
[MemoryDiagnoser]
public class QuantGemvBenchmarks
{
    private const int Rows = 3072, Columns = 768;
    private float[] _w = [], _x = [], _y = [];
    private QuantizedMatrix _q = null!;

    /// <summary>The storage format under test.</summary>
    [Params(BaseDType.F32, BaseDType.Bf16, BaseDType.F16, BaseDType.Int8, BaseDType.Nf4)]
    public BaseDType DType { get; set; }

    /// <summary>A random weight (std 0.02, as GPT-2's init) and input.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var g = new TorchGenerator(16);
        _w = new float[Rows * Columns];
        g.FillNormal(_w, 0f, 0.02f);
        _x = new float[Columns];
        g.FillNormal(_x);
        _y = new float[Rows];
        _q = QuantizedMatrix.Quantize(_w, Rows, Columns, DType);
    }

    /// <summary>The F32 weight through the packed GEMM at m = 1 (today's decode path).</summary>
    [Benchmark(Baseline = true)]
    public void F32Gemm() => Gemm.Multiply(false, true, 1, Rows, Columns, 1f, _x, Columns, _w, Columns, 0f, _y, Rows);

    /// <summary>The stored weight through the GEMV that expands it a chunk at a time.</summary>
    [Benchmark]
    public void QuantizedGemv() => _q.MultiplyVector(_x, _y);
}
