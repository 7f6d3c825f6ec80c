using System.Diagnostics;
using LoRA.Managed.Models;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Cli.Bench;

/// <summary>
/// Compares thread counts side by side: every repetition runs the same product once per thread count,
/// in turn, so that the load of a shared machine falls on all of them alike; the best time of each is kept.
/// Separate runs at 1 and then 2 threads can differ by more than the effect being measured.
/// </summary>
public static class ThreadScaling
{
    /// <summary>GFLOP/s of <see cref="Gemm"/> on one shape at each thread count (best of interleaved
    /// repetitions).</summary>
    public static double[] Gemm(int m, int k, int n, bool transA, bool transB, int[] threads, double seconds = 0.5)
    {
        var g = new TorchGenerator(42);
        float[] a = new float[m * k], b = new float[k * n], c = new float[m * n];
        g.FillUniform(a, -1f, 1f);
        g.FillUniform(b, -1f, 1f);
        int lda = transA ? m : k, ldb = transB ? k : n;
        double[] best = Interleaved(threads,
            () => Kernels.Gemm.Multiply(transA, transB, m, n, k, 1f, a, lda, b, ldb, 0f, c, n), seconds);
        return best.Select(s => 2.0 * m * n * k / s / 1e9).ToArray();
    }

    /// <summary>Best time in seconds of <paramref name="run"/> at each thread count, alternating between
    /// them.</summary>
    public static double[] Interleaved(int[] threads, Action run, double seconds)
    {
        var best = Enumerable.Repeat(double.MaxValue, threads.Length).ToArray();
        using (ComputeThreads.Use(null))
        {
            long start = Stopwatch.GetTimestamp();
            for (int rep = 0; rep < 5 || Stopwatch.GetElapsedTime(start).TotalSeconds < seconds; rep++)
                for (int t = 0; t < threads.Length; t++)
                {
                    using var scope = ComputeThreads.Use(threads[t]); // each count restored before the next
                    run();
                    long t0 = Stopwatch.GetTimestamp();
                    run();
                    best[t] = Math.Min(best[t], Stopwatch.GetElapsedTime(t0).TotalSeconds);
                }
        }
        return best;
    }

    /// <summary>A table: each QuickBench shape at each thread count, and the speed-up of the last over the
    /// first.</summary>
    public static string Table(int[] threads, double seconds = 0.5)
    {
        QuickBench.WarmUp();
        var sb = new System.Text.StringBuilder();
        sb.AppendLine("| M | K | N | op | " + string.Join(" | ", threads.Select(t => $"GFLOP/s, {t} thr")) +
            $" | {threads[^1]} vs {threads[0]} |");
        sb.AppendLine("|---:|---:|---:|---|" + string.Concat(threads.Select(_ => "---:|")) + "---:|");
        foreach (var (m, k, n, ta, tb) in QuickBench.Shapes())
        {
            double[] r = Gemm(m, k, n, ta, tb, threads, seconds);
            sb.AppendLine($"| {m} | {k} | {n} | {(ta ? 'T' : 'N')}{(tb ? 'T' : 'N')} | " +
                string.Join(" | ", r.Select(x => x.ToString("F1"))) + $" | {r[^1] / r[0]:F2}× |");
        }
        return sb.ToString();
    }

    /// <summary>Median-free best step time in ms of the base and LoRA train steps at each thread count,
    /// interleaved.</summary>
    public static string StepTable(int[] threads, double seconds = 3)
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine("| step | " + string.Join(" | ", threads.Select(t => $"ms, {t} thr")) +
            $" | {threads[^1]} vs {threads[0]} |");
        sb.AppendLine("|---|" + string.Concat(threads.Select(_ => "---:|")) + "---:|");
        foreach (var (name, create) in new (string, Func<Action>)[]
        {
            ("base Mlp.Blog", () => QuickBench.CreateTrainStep(lora: false)),
            ("LoRA (rank 4 on layers.5)", () => QuickBench.CreateTrainStep(lora: true)),
            ("lm-demo GPT (batch 32×64, AdamW)", QuickBench.CreateGptTrainStep),
        })
        {
            Action step = create();
            for (int i = 0; i < 20; i++) step();
            double[] r = Interleaved(threads, step, seconds).Select(s => s * 1e3).ToArray();
            sb.AppendLine($"| {name} | " + string.Join(" | ", r.Select(x => x.ToString("F3"))) +
                $" | {r[0] / r[^1]:F2}× faster |");
        }
        return sb.ToString();
    }
}
