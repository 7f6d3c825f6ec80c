using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LoRA.Managed.Cli.Bench;

/// <summary>
/// The machine's FMA peak, measured rather than read from a data sheet: <c>threads</c> threads released together,
/// each running sixteen independent chains of fused multiply-adds on the widest vector the JIT accelerates (the width
/// <see cref="Kernels.Gemm"/> computes with), their flops over the wall time of all of them. Sixteen chains keep
/// every FMA unit busy on the cores measured so far (docs/07: Zen 5 has two units of latency 4, so eight in flight
/// suffice). Issue 20's "fraction of the two-core peak" divides by <c>Measure(2)</c>; measuring both cores at once
/// (rather than doubling one) shows a second vCPU that is shared or clocked lower.
/// </summary>
public static class FmaPeak
{
    /// <summary>Bits of the vectors the loop runs on: 512, 256 or 128.</summary>
    public static int VectorBits =>
        Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : 128;

    /// <summary>Independent accumulators per thread.</summary>
    public const int Chains = 16;

    /// <summary>
    /// GFLOP/s of <paramref name="threads"/> threads running the FMA loop at once: 2 flops per lane per FMA, over the
    /// best wall time of <paramref name="repetitions"/> runs (the least disturbed by other processes).
    /// </summary>
    /// <param name="threads">Threads started together (the caller is one of them).</param>
    /// <param name="iterations">Loop trips per thread and run; each trip is <see cref="Chains"/> FMAs.</param>
    /// <param name="repetitions">Runs; the fastest is kept.</param>
    public static double Measure(int threads, long iterations = 1 << 21, int repetitions = 12)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(repetitions, 1);
        Run(Math.Min(iterations, 1 << 16)); // compiled at full optimisation before anything is timed
        double best = double.MaxValue;
        var sink = new float[threads];
        for (int rep = 0; rep < repetitions; rep++)
        {
            using var start = new Barrier(threads);
            var workers = new Thread[threads - 1];
            for (int t = 0; t < workers.Length; t++)
            {
                int slot = t + 1;
                workers[t] = new Thread(() => { start.SignalAndWait(); sink[slot] = Run(iterations); })
                    { IsBackground = true };
                workers[t].Start();
            }
            start.SignalAndWait();
            long t0 = Stopwatch.GetTimestamp();
            sink[0] = Run(iterations);
            foreach (Thread w in workers) w.Join();
            best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }
        GC.KeepAlive(sink);
        return threads * 2.0 * (VectorBits / 32) * Chains * iterations / best / 1e9;
    }

    // The loops return their sums so the JIT cannot drop them; m < 1 and d > 0 keep every value finite and normal.
    private static float Run(long iterations) => VectorBits switch
    {
        512 => Vector512Chains16(iterations),
        256 => Fma256(iterations),
        _ => Fma128(iterations),
    };

    /// <summary>Sixteen independent <c>Vector512</c> FMA chains for <paramref name="iterations"/> trips; returns their
    /// sum (so the loop cannot be dropped). The roofline's 16-chain row runs this.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static float Vector512Chains16(long iterations)
    {
        Vector512<float> m = Vector512.Create(0.999999f), d = Vector512.Create(1e-3f);
        Vector512<float> c0 = d, c1 = d, c2 = d, c3 = d, c4 = d, c5 = d, c6 = d, c7 = d;
        Vector512<float> c8 = d, c9 = d, c10 = d, c11 = d, c12 = d, c13 = d, c14 = d, c15 = d;
        for (long i = 0; i < iterations; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, m, d); c1 = Vector512.FusedMultiplyAdd(c1, m, d);
            c2 = Vector512.FusedMultiplyAdd(c2, m, d); c3 = Vector512.FusedMultiplyAdd(c3, m, d);
            c4 = Vector512.FusedMultiplyAdd(c4, m, d); c5 = Vector512.FusedMultiplyAdd(c5, m, d);
            c6 = Vector512.FusedMultiplyAdd(c6, m, d); c7 = Vector512.FusedMultiplyAdd(c7, m, d);
            c8 = Vector512.FusedMultiplyAdd(c8, m, d); c9 = Vector512.FusedMultiplyAdd(c9, m, d);
            c10 = Vector512.FusedMultiplyAdd(c10, m, d); c11 = Vector512.FusedMultiplyAdd(c11, m, d);
            c12 = Vector512.FusedMultiplyAdd(c12, m, d); c13 = Vector512.FusedMultiplyAdd(c13, m, d);
            c14 = Vector512.FusedMultiplyAdd(c14, m, d); c15 = Vector512.FusedMultiplyAdd(c15, m, d);
        }
        return (c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11 + c12 + c13 + c14 + c15).ToScalar();
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Fma256(long iterations)
    {
        Vector256<float> m = Vector256.Create(0.999999f), d = Vector256.Create(1e-3f);
        Vector256<float> c0 = d, c1 = d, c2 = d, c3 = d, c4 = d, c5 = d, c6 = d, c7 = d;
        Vector256<float> c8 = d, c9 = d, c10 = d, c11 = d, c12 = d, c13 = d, c14 = d, c15 = d;
        for (long i = 0; i < iterations; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, m, d); c1 = Vector256.FusedMultiplyAdd(c1, m, d);
            c2 = Vector256.FusedMultiplyAdd(c2, m, d); c3 = Vector256.FusedMultiplyAdd(c3, m, d);
            c4 = Vector256.FusedMultiplyAdd(c4, m, d); c5 = Vector256.FusedMultiplyAdd(c5, m, d);
            c6 = Vector256.FusedMultiplyAdd(c6, m, d); c7 = Vector256.FusedMultiplyAdd(c7, m, d);
            c8 = Vector256.FusedMultiplyAdd(c8, m, d); c9 = Vector256.FusedMultiplyAdd(c9, m, d);
            c10 = Vector256.FusedMultiplyAdd(c10, m, d); c11 = Vector256.FusedMultiplyAdd(c11, m, d);
            c12 = Vector256.FusedMultiplyAdd(c12, m, d); c13 = Vector256.FusedMultiplyAdd(c13, m, d);
            c14 = Vector256.FusedMultiplyAdd(c14, m, d); c15 = Vector256.FusedMultiplyAdd(c15, m, d);
        }
        return (c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11 + c12 + c13 + c14 + c15).ToScalar();
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Fma128(long iterations)
    {
        Vector128<float> m = Vector128.Create(0.999999f), d = Vector128.Create(1e-3f);
        Vector128<float> c0 = d, c1 = d, c2 = d, c3 = d, c4 = d, c5 = d, c6 = d, c7 = d;
        Vector128<float> c8 = d, c9 = d, c10 = d, c11 = d, c12 = d, c13 = d, c14 = d, c15 = d;
        for (long i = 0; i < iterations; i++)
        {
            c0 = Vector128.FusedMultiplyAdd(c0, m, d); c1 = Vector128.FusedMultiplyAdd(c1, m, d);
            c2 = Vector128.FusedMultiplyAdd(c2, m, d); c3 = Vector128.FusedMultiplyAdd(c3, m, d);
            c4 = Vector128.FusedMultiplyAdd(c4, m, d); c5 = Vector128.FusedMultiplyAdd(c5, m, d);
            c6 = Vector128.FusedMultiplyAdd(c6, m, d); c7 = Vector128.FusedMultiplyAdd(c7, m, d);
            c8 = Vector128.FusedMultiplyAdd(c8, m, d); c9 = Vector128.FusedMultiplyAdd(c9, m, d);
            c10 = Vector128.FusedMultiplyAdd(c10, m, d); c11 = Vector128.FusedMultiplyAdd(c11, m, d);
            c12 = Vector128.FusedMultiplyAdd(c12, m, d); c13 = Vector128.FusedMultiplyAdd(c13, m, d);
            c14 = Vector128.FusedMultiplyAdd(c14, m, d); c15 = Vector128.FusedMultiplyAdd(c15, m, d);
        }
        return (c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11 + c12 + c13 + c14 + c15).ToScalar();
    }
}
