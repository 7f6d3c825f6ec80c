using System.Diagnostics;
using System.Text;
using LoRA.Managed.Kernels;

namespace LoRA.Managed.Benchmarks.Training;

/// <summary>
/// Adam's fused pass (<see cref="AdamUpdate.Step"/>) per element, on state that fits in L2, on the blog MLP's 535,818
/// parameters repeated (its 8.6 MB of state as warm as the caches keep it), and on the same after 64 MB of other
/// traffic (state from memory): whether the step's Adam is bound by its arithmetic or by memory.
/// </summary>
public static class AdamCacheTiming
{
    /// <summary>ns per 1,000 elements in each setting, one thread.</summary>
    public static string Table(int repetitions = 200)
    {
        var sb = new StringBuilder();
        using var one = ComputeThreads.Use(1);
        var flush = new float[16 << 20];
        foreach (var (name, n, cold, stuck, spread) in new[] { ("16K elements (L2)", 16384, false, false, false),
            ("535,818 (MLP, warm)", 535_818, false, false, false),
            ("535,818 (MLP, after 64 MB)", 535_818, true, false, false),
            ("535,818 (MLP, warm), 1 in 4 vectors with subnormal m at rest", 535_818, false, true, false),
            ("535,818 (MLP, warm), a subnormal m in half the vectors at random", 535_818, false, false, true) })
        {
            var p = new float[n]; var g = new float[n]; var m = new float[n]; var v = new float[n];
            var r = new Random(1);
            for (int i = 0; i < n; i++) { p[i] = (float)r.NextDouble() - 0.5f; g[i] = (float)r.NextDouble() - 0.5f; }
            // The real run's blank pixels: a zero gradient and a first moment decayed to ±4·2⁻¹⁴⁹, where it stays
            // (0.1·4 ulps rounds to 0), in half the lanes of every fourth vector.
            if (stuck)
                for (int i = 0; i < n; i++)
                    if ((i / 16) % 4 == 0 && i % 2 == 0) { g[i] = 0f; m[i] = BitConverter.Int32BitsToSingle(4); }
            // After the blog MLP's first epoch: one moment in eight subnormal, in about half the vectors, which ones
            // at random (docs/07-performance.md, "Subnormal moments spread out (Zen 5)").
            if (spread)
                for (int i = 0; i < n; i += 16)
                    if (r.Next(2) == 0)
                        for (int lane = i; lane < Math.Min(n, i + 16); lane++)
                            if (r.Next(4) == 0)
                            {
                                g[lane] = 0f;
                                m[lane] = BitConverter.Int32BitsToSingle(1 + r.Next(1 << 20));
                            }
            // Half a second first: tiered compilation recompiles the hot loops (as StepPhases waits).
            long warm = Stopwatch.GetTimestamp();
            float[] p0 = (float[])p.Clone(), m0 = (float[])m.Clone(), v0 = (float[])v.Clone();
            while (Stopwatch.GetElapsedTime(warm).TotalSeconds < 0.5)
                AdamUpdate.Step(p0, g, m0, v0, 1e-3f, 0.1f, 0.999f, 0.001f, 0.5f, 1e-8f, 0f, 1f);
            var best = double.MaxValue;
            float[] spreadMoments = (float[])m.Clone();
            for (int rep = 0; rep < repetitions; rep++)
            {
                if (cold) for (int i = 0; i < flush.Length; i += 16) flush[i] += 1f;
                // Spread moments decay to rest within ~135 passes: each pass starts from the same, still moving, ones.
                if (spread) spreadMoments.CopyTo(m, 0);
                long t0 = Stopwatch.GetTimestamp();
                int inner = n < 100_000 ? 30 : 1;
                for (int k = 0; k < inner; k++)
                    AdamUpdate.Step(p, g, m, v, 1e-3f, 0.1f, 0.999f, 0.001f, 0.5f, 1e-8f, 0f, 1f);
                best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalNanoseconds / inner);
            }
            sb.AppendLine($"{name}: {best / n * 1000:F0} ns per 1,000 elements, {best / 1000:F1} µs per pass");
        }
        return sb.ToString();
    }
}
