using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Benchmarks.Kernels;

/// <summary>
/// Question: what does AVX-512 buy the GEMM? The same code runs in three processes side by side:
/// default (8×32 Vector512 micro-kernel), <c>DOTNET_PreferredVectorBitWidth=256</c> (the runtime then
/// reports <c>Vector512.IsHardwareAccelerated == false</c>, so the 6×16 Vector256 kernel runs) and
/// <c>DOTNET_EnableAVX512=0</c> (AVX-512 disabled entirely: <c>Avx512F.IsSupported</c> is false too). One thread.
/// .NET 10 ignores the older <c>DOTNET_EnableAVX512F=0</c>: measured here, it left
/// <c>Vector512.IsHardwareAccelerated</c> true and the timings equal to the default's, so the job uses the new name.
/// </summary>
[Config(typeof(Config))]
public class VectorWidthBenchmarks
{
    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddJob(ShortRunConfig.ShortJob.WithId("Avx512").AsBaseline());
            AddJob(ShortRunConfig.ShortJob.WithEnvironmentVariables(
                new EnvironmentVariable("DOTNET_PreferredVectorBitWidth", "256")).WithId("PreferredWidth256"));
            AddJob(ShortRunConfig.ShortJob.WithEnvironmentVariables(new EnvironmentVariable("DOTNET_EnableAVX512", "0"))
                .WithId("NoAvx512"));
        }
    }

    private float[] _a = [], _b = [], _c = [];

    /// <summary>The first layer's forward and weight gradient, and 512².</summary>
    public static IEnumerable<GemmShape> Shapes() =>
        [new GemmShape(64, 784, 512, false, true), new GemmShape(512, 64, 784, true, false),
            new GemmShape(512, 512, 512, false, false)];

    /// <summary>The product measured.</summary>
    [ParamsSource(nameof(Shapes))]
    public GemmShape Shape { get; set; } = null!;

    /// <summary>Random operands, one thread.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var s = Shape;
        (_a, _b, _c) = s.RandomOperands();
        ComputeThreads.Max = 1;
    }

    /// <summary>Our GEMM under each job's vector width.</summary>
    [Benchmark]
    public void Gemm()
    {
        var s = Shape;
        LoRA.Managed.Kernels.Gemm.Multiply(s.TransA, s.TransB, s.M, s.N, s.K, 1f, _a, s.Lda, _b, s.Ldb, 0f, _c, s.N);
    }
}
