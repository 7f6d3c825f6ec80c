using System.Diagnostics;
using System.Text;
using LoRA.Managed.Cli.Bench;
using LoRA.Managed.Kernels;

namespace LoRA.Managed.Benchmarks.Training;

/// <summary>
/// Where the blog MLP's step loses time on two threads, item by item (docs/07-performance.md, "Why the MLP's targets
/// stop here"). In one process, after a second of warm-up, alternating the cases in every round (medians of each
/// round's calls, µs):
/// <list type="number">
/// <item>the first layer's product, 64×784·(512×784)ᵀ: on one thread; one half of its columns alone on one thread;
/// and the whole on two threads, which the pool splits into exactly those two halves. Half alone against the
/// two-thread whole is what two cores running at once cost each other, dispatch included.</item>
/// <item>the forward's three products one after the other on two threads, against each repeated alone: the second
/// and third read an activation each core wrote half of.</item>
/// <item>Adam's pass over the MLP's 535,818 parameters, warm and with no subnormal moment, on one and two threads,
/// with ns per 16-lane vector.</item>
/// </list>
/// </summary>
public static class TwoCoreBudget
{
    private const int In = 784, Hidden1 = 512, Hidden2 = 256, Out = 10, Batch = 64, Parameters = 535_818;

    /// <summary>Runs <paramref name="rounds"/> rounds of every case and returns the tables.</summary>
    public static string Table(int rounds = 3, int calls = 300)
    {
        var r = new Random(1);
        float[] Fill(int n)
        {
            var a = new float[n];
            for (int i = 0; i < n; i++) a[i] = (float)r.NextDouble() - 0.5f;
            return a;
        }
        float[] x = Fill(Batch * In), w1 = Fill(Hidden1 * In), h1 = Fill(Batch * Hidden1), w2 = Fill(Hidden2 * Hidden1);
        float[] h2 = Fill(Batch * Hidden2), w3 = Fill(Out * Hidden2), logits = Fill(Batch * Out);
        float[] p = Fill(Parameters), g = Fill(Parameters), m = new float[Parameters], v = new float[Parameters];
        for (int i = 0; i < Parameters; i++)
        {
            g[i] *= 1e-2f;
            m[i] = 0.3f * g[i];
            v[i] = 0.5f * g[i] * g[i] + 1e-12f;
        }

        void G1() => Gemm.Multiply(false, true, Batch, Hidden1, In, 1f, x, In, w1, In, 0f, h1, Hidden1);
        void G1Half() => Gemm.Multiply(false, true, Batch, Hidden1 / 2, In, 1f, x, In, w1.AsSpan(Hidden1 / 2 * In),
            In, 0f, h1.AsSpan(Hidden1 / 2), Hidden1);
        void G2() => Gemm.Multiply(false, true, Batch, Hidden2, Hidden1, 1f, h1, Hidden1, w2, Hidden1, 0f, h2, Hidden2);
        void G3() => Gemm.Multiply(false, true, Batch, Out, Hidden2, 1f, h2, Hidden2, w3, Hidden2, 0f, logits, Out);
        // Adam's state stays normal: 1e-3 steps on values of ±0.5 do not drift far in a few thousand passes.
        void Adam() => AdamUpdate.Step(p, g, m, v, 1e-3f, 0.1f, 0.999f, 0.001f, 0.5f, 1e-8f, 0f, 1f);

        var sb = new StringBuilder();
        sb.AppendLine("| round | layer 1, 1 thread | one half alone | both halves, 2 threads | 2 threads vs half |");
        sb.AppendLine("|---:|---:|---:|---:|---:|");
        var seq = new StringBuilder("| round | layer 1 | layer 2 | layer 3 | sum in sequence | sum, each alone |\n");
        seq.AppendLine("|---:|---:|---:|---:|---:|---:|");
        var adam = new StringBuilder(
            "| round | Adam, 1 thread | Adam, 2 threads | 2 vs 1 | ns per vector, 1 thread |\n");
        adam.AppendLine("|---:|---:|---:|---:|---:|");
        long warm = Stopwatch.GetTimestamp();
        for (int round = 0; round <= rounds; round++)
        {
            bool report = round > 0; // round 0 is the warm-up: tiered compilation recompiles the hot loops
            int n = report ? calls : 100;
            double one, half, two, a1, a2;
            using (ComputeThreads.Use(1))
            {
                one = Median(G1, n);
                half = Median(G1Half, n);
                a1 = Median(Adam, n);
            }
            double s1, s2, s3, alone1, alone2, alone3;
            using (ComputeThreads.Use(2))
            {
                two = Median(G1, n);
                a2 = Median(Adam, n);
                (s1, s2, s3) = InSequence(G1, G2, G3, n);
                alone1 = Median(G1, n);
                alone2 = Median(G2, n);
                alone3 = Median(G3, n);
            }
            if (!report)
            {
                if (Stopwatch.GetElapsedTime(warm).TotalSeconds < 1) round--;
                continue;
            }
            sb.AppendLine($"| {round} | {one:F1} | {half:F1} | {two:F1} | {two / half:F2}× |");
            seq.AppendLine($"| {round} | {s1:F1} | {s2:F1} | {s3:F1} | {s1 + s2 + s3:F1} | " +
                $"{alone1 + alone2 + alone3:F1} |");
            adam.AppendLine($"| {round} | {a1:F1} | {a2:F1} | {a1 / a2:F2}× | {a1 * 1000 / (Parameters / 16.0):F2} |");
        }
        return "The first layer's product, µs (median of each round's calls):\n" + sb +
            "\nThe forward's products on two threads, in sequence and each repeated alone, µs:\n" + seq +
            $"\nAdam over {Parameters:N0} parameters, warm, no subnormal moment, µs:\n" + adam;
    }

    private static double Median(Action action, int calls) => StepProfile.MedianMicroseconds(action, calls);

    private static (double, double, double) InSequence(Action a, Action b, Action c, int calls)
    {
        var ta = new double[calls];
        var tb = new double[calls];
        var tc = new double[calls];
        for (int i = 0; i < calls; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            a();
            long t1 = Stopwatch.GetTimestamp();
            b();
            long t2 = Stopwatch.GetTimestamp();
            c();
            long t3 = Stopwatch.GetTimestamp();
            ta[i] = Stopwatch.GetElapsedTime(t0, t1).TotalMicroseconds;
            tb[i] = Stopwatch.GetElapsedTime(t1, t2).TotalMicroseconds;
            tc[i] = Stopwatch.GetElapsedTime(t2, t3).TotalMicroseconds;
        }
        Array.Sort(ta);
        Array.Sort(tb);
        Array.Sort(tc);
        return (ta[calls / 2], tb[calls / 2], tc[calls / 2]);
    }
}
