using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;

namespace LoRA.Managed.Benchmarks;

/// <summary>
/// The suite's default job: one process, 2 warm-up and 5 measured iterations, so that one class runs in
/// a few minutes on a 2-core machine. For publication-grade figures pass <c>--job default</c> (or
/// <c>--job long</c>) on the command line, which adds BenchmarkDotNet's own jobs.
/// </summary>
public sealed class ShortRunConfig : ManualConfig
{
    /// <summary>The short job shared by the suite's classes.</summary>
    public static Job ShortJob => Job.Default.WithLaunchCount(1).WithWarmupCount(2).WithIterationCount(5);

    /// <summary>Adds <see cref="ShortJob"/>.</summary>
    public ShortRunConfig() => AddJob(ShortJob.WithId("Short"));
}
