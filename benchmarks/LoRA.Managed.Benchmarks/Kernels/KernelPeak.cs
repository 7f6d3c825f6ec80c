using System.Diagnostics;
using LoRA.Managed.Kernels;

namespace LoRA.Managed.Benchmarks.Kernels;

/// <summary>Scratch: GFLOP/s of one register tile on data in L1.</summary>
public static unsafe class KernelPeak
{
    /// <summary>Runs the comparison.</summary>
    public static string Run()
    {
        var sb = new System.Text.StringBuilder();
        foreach (int kc in new[] { 64, 256 })
        {
            float[] a = new float[12 * 256 * 8], b = new float[256 * 32], c = new float[16 * 64];
            var r = new Random(1);
            for (int i = 0; i < a.Length; i++) a[i] = (float)r.NextDouble();
            for (int i = 0; i < b.Length; i++) b[i] = (float)r.NextDouble();
            fixed (float* pa = a, pb = b, pc = c)
            {
                float* A = pa, B = pb, C = pc;
                int reps = 20000000 / kc;
                double flops = 2.0 * 8 * 32 * kc * reps;
                double t1 = Time(() => { for (int i = 0; i < reps; i++) MicroKernels.Kernel8x32(kc, A, B, C, 64, 8, 32, 1f, 0f); });
                double t2 = Time(() => { for (int i = 0; i < reps; i++) NarrowKernels.Rows8x32(kc, 1f, A, kc, 1, B, 32, 0f, C, 64, 8, 32); });
                double t3 = Time(() => { for (int i = 0; i < reps; i++) NarrowKernels.Rows8x32(kc, 1f, A, 1, 8, B, 32, 0f, C, 64, 8, 32); });
                double t4 = Time(() => { for (int i = 0; i < reps; i++) NarrowKernels.Rows12x32(kc, 1f, A, B, 32, 0f, C, 64, 12, 32); });
                sb.AppendLine($"kc={kc}: packed 8x32 {flops / t1 / 1e9:F1}, direct rows 8x32 (NN) {flops / t2 / 1e9:F1}, " +
                    $"direct 8x32 (T, stride 8) {flops / t3 / 1e9:F1}, 12x32 packed {1.5 * flops / t4 / 1e9:F1}");
            }
        }
        return sb.ToString();
    }

    private static double Time(Action run)
    {
        run();
        double best = double.MaxValue;
        for (int i = 0; i < 5; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            run();
            best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }
        return best;
    }
}
