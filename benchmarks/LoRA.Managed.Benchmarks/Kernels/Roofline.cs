using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Text;
using LoRA.Managed.Cli.Bench;
using LoRA.Managed.Kernels;

namespace LoRA.Managed.Benchmarks.Kernels;

/// <summary>
/// Question: what limits a GEMM on this CPU? Measures the ceilings on one core (the rate of one chain of dependent
/// adds and of several independent ones, scalar and 512-bit; the bandwidth of reading from each cache level and
/// from memory) and sets our GEMM and the naive twin on the blog MLP's shapes beside them, at each product's
/// arithmetic intensity (flops per byte of its compulsory traffic). <c>--roofline [--svg FILE]</c>; the table and
/// docs/figures/roofline.svg of docs/07-performance.md.
/// </summary>
public static class Roofline
{
    /// <summary>One measured ceiling: a compute rate (GFLOP/s) or a bandwidth (GB/s).</summary>
    /// <param name="Name">What was measured.</param>
    /// <param name="Value">GFLOP/s for a compute ceiling, GB/s for a bandwidth.</param>
    /// <param name="IsBandwidth">True for a bandwidth.</param>
    public sealed record Ceiling(string Name, double Value, bool IsBandwidth);

    /// <summary>One product: its shape, intensity and the two measured rates.</summary>
    /// <param name="Label">M×K×N and the transposes.</param>
    /// <param name="Intensity">2·M·N·K flops over 4·(MK + KN + MN) bytes.</param>
    /// <param name="Ours">GFLOP/s of <see cref="Gemm"/>, one thread.</param>
    /// <param name="Naive">GFLOP/s of <see cref="GemmReference"/>, one thread.</param>
    public sealed record Point(string Label, double Intensity, double Ours, double Naive);

    /// <summary>Measures everything on one thread and returns the two lists.</summary>
    public static (IReadOnlyList<Ceiling> Ceilings, IReadOnlyList<Point> Points) Measure()
    {
        using var _ = ComputeThreads.Use(1);
        QuickBench.WarmUp();
        var ceilings = new List<Ceiling>();
        float[] x = Random(1024), y = Random(1024);
        const int reps = 64;
        double dotFlops = 2.0 * 1024 * reps;
        ceilings.Add(new("scalar a·b dot product, one sum (one chain of dependent adds)",
            dotFlops / Best(() => DotOneSum(x, y, reps)) / 1e9, false));
        ceilings.Add(new("scalar a·b dot product, four sums",
            dotFlops / Best(() => DotFourSums(x, y, reps)) / 1e9, false));
        if (Vector512.IsHardwareAccelerated)
        {
            const long iters = 1 << 20;
            foreach (int chains in new[] { 1, 2, 4, 8, 16 })
            {
                double flops = 2.0 * 16 * chains * iters;
                ceilings.Add(new($"Vector512 FMA, {chains} independent chain{(chains > 1 ? "s" : "")}",
                    flops / Best(() => FmaChains(chains, iters)) / 1e9, false));
            }
        }
        var sizes = new[] { ("L1", 16 << 10), ("L2", 512 << 10), ("L3", 8 << 20), ("memory", 128 << 20) };
        foreach (var (label, bytes) in sizes)
        {
            float[] data = Random(bytes / 4);
            int passes = Math.Max(1, (64 << 20) / bytes);
            double seconds = Best(() => Read(data, passes));
            ceilings.Add(new($"read {bytes >> 10:N0} KB ({label})", (double)bytes * passes / seconds / 1e9, true));
        }
        var points = new List<Point>();
        foreach (var (m, k, n, ta, tb) in QuickBench.Shapes())
        {
            var g = QuickBench.MeasureGemm(m, k, n, ta, tb, 0.2);
            double intensity = 2.0 * m * n * k / (4.0 * ((long)m * k + (long)k * n + (long)m * n));
            string op = (ta ? "T" : "N") + (tb ? "T" : "N");
            points.Add(new($"{m}×{k}×{n} {op}", intensity, g.Gflops, g.GflopsNaive));
        }
        return (ceilings, points);
    }

    /// <summary>
    /// The two-core FMA peak, measured rather than assumed: <see cref="FmaPeak.Measure"/> on two threads at once.
    /// Issue 20's "fraction of the two-core peak" divides by this (and <c>lora bench --threads 2</c> prints it).
    /// </summary>
    public static double TwoCoreFmaPeak() => FmaPeak.Measure(threads: 2, iterations: 1 << 22);

    /// <summary>
    /// What two cores get from memory and from each other, the limits of a memory-bound kernel on two threads:
    /// both cores reading their own 2 MB to 128 MB at once (against one alone), and one
    /// core reading 256 KB that the other core has just written (against 256 KB it wrote itself). Returns a markdown
    /// table of GB/s.
    /// </summary>
    public static string MemoryAcrossCores()
    {
        var sb = new StringBuilder("| reads | GB/s |\n|---|---:|\n");
        foreach (int mb in new[] { 2, 4, 8, 16, 128 })
        {
            int bytes = mb << 20;
            string label = $"{mb} MB";
            float[] a = Random(bytes / 4), b = Random(bytes / 4);
            int passes = Math.Max(1, (256 << 20) / bytes);
            double one = Best(() => Read(a, passes));
            double both = double.MaxValue;
            for (int rep = 0; rep < 5; rep++)
            {
                using var start = new Barrier(2);
                var worker = new Thread(() => { start.SignalAndWait(); Read(b, passes); });
                worker.Start();
                start.SignalAndWait();
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                Read(a, passes);
                worker.Join();
                both = Math.Min(both, System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds);
            }
            sb.AppendLine(Inv($"| {label} on one core | {(double)bytes * passes / one / 1e9:F1} |"));
            sb.AppendLine(Inv($"| {label} each on two cores at once (sum) | {2.0 * bytes * passes / both / 1e9:F1} |"));
        }
        const int handoff = 256 << 10;
        float[] shared = Random(handoff / 4);
        double own = double.MaxValue, other = double.MaxValue;
        using (var turn = new Barrier(2))
        {
            const int reps = 400;
            var writer = new Thread(() =>
            {
                for (int r = 0; r < reps; r++) { turn.SignalAndWait(); Array.Fill(shared, r); turn.SignalAndWait(); }
            });
            writer.Start();
            for (int r = 0; r < reps; r++)
            {
                turn.SignalAndWait(); // the other core writes the buffer
                turn.SignalAndWait();
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                Read(shared, 1);
                other = Math.Min(other, System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds);
                Array.Fill(shared, -r); // this core writes it
                t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                Read(shared, 1);
                own = Math.Min(own, System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds);
            }
            writer.Join();
        }
        sb.AppendLine(Inv($"| 256 KB this core just wrote | {handoff / own / 1e9:F1} |"));
        sb.AppendLine(Inv($"| 256 KB the other core just wrote | {handoff / other / 1e9:F1} |"));
        return sb.ToString();
    }

    /// <summary>The two markdown tables.</summary>
    public static string Tables(IReadOnlyList<Ceiling> ceilings, IReadOnlyList<Point> points)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| ceiling (one core) | GFLOP/s or GB/s |");
        sb.AppendLine("|---|---:|");
        foreach (var c in ceilings)
            sb.AppendLine(Inv($"| {c.Name} | {c.Value:F1} {(c.IsBandwidth ? "GB/s" : "GFLOP/s")} |"));
        sb.AppendLine();
        sb.AppendLine("| M×K×N op | flops per byte | ours, GFLOP/s | naive, GFLOP/s |");
        sb.AppendLine("|---|---:|---:|---:|");
        foreach (var p in points)
            sb.AppendLine(Inv($"| {p.Label} | {p.Intensity:F1} | {p.Ours:F1} | {p.Naive:F2} |"));
        return sb.ToString();
    }

    /// <summary>A log-log roofline: the fastest compute ceiling, the memory and L2 bandwidth slopes, the other
    /// compute ceilings as dashed lines, and the products (ours and naive) at their intensities.</summary>
    public static string Svg(IReadOnlyList<Ceiling> ceilings, IReadOnlyList<Point> points)
    {
        const double W = 860, H = 520, L = 70, R = 600, T = 40, B = 470;
        const double xMin = -3, xMax = 8, yMin = 0, yMax = 10;   // log₂ flops/byte, log₂ GFLOP/s
        double X(double intensity) => L + (R - L) * (Math.Log2(intensity) - xMin) / (xMax - xMin);
        double Y(double gflops) => B - (B - T) * (Math.Log2(Math.Max(gflops, 1)) - yMin) / (yMax - yMin);
        var s = new StringBuilder();
        s.Append(Inv($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" "))
            .Append("font-family=\"sans-serif\" font-size=\"11\">\n")
            .Append(Inv($"<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n"));
        for (int e = (int)xMin; e <= xMax; e++)
        {
            double x = X(Math.Pow(2, e));
            Line(s, x, T, x, B, "#eee");
            Text(s, x, B + 16, Math.Pow(2, e).ToString("0.###", CultureInfo.InvariantCulture), "middle");
        }
        for (int e = (int)yMin; e <= yMax; e++)
        {
            double y = Y(Math.Pow(2, e));
            Line(s, L, y, R, y, "#eee");
            Text(s, L - 6, y + 4, Math.Pow(2, e).ToString(CultureInfo.InvariantCulture), "end");
        }
        s.Append(Inv($"<rect x=\"{L}\" y=\"{T}\" width=\"{R - L}\" height=\"{B - T}\" "))
            .Append("fill=\"none\" stroke=\"black\"/>\n");
        Text(s, (L + R) / 2, B + 34, "arithmetic intensity: flops per byte of compulsory traffic (log scale)",
            "middle");
        s.Append(Inv($"<text x=\"18\" y=\"{(T + B) / 2}\" text-anchor=\"middle\" "))
            .Append(Inv($"transform=\"rotate(-90 18 {(T + B) / 2})\">"))
            .Append("GFLOP/s, one core (log scale)</text>\n");
        Text(s, (L + R) / 2, 24, "Roofline of one core, and the blog MLP's products", "middle", "font-size=\"14\"");
        var compute = ceilings.Where(c => !c.IsBandwidth).ToList();
        double peak = compute.Max(c => c.Value);
        foreach (var bw in ceilings.Where(c => c.IsBandwidth && (c.Name.Contains("memory") || c.Name.Contains("L2"))))
        {
            double x0 = Math.Pow(2, xMin), x1 = peak / bw.Value;   // the slope meets the peak at x1
            string colour = bw.Name.Contains("memory") ? "#444" : "#999";
            Line(s, X(x0), Y(bw.Value * x0), X(x1), Y(peak), colour, 2);
            Text(s, X(x0) + 4, Y(bw.Value * x0) - 6, Inv($"{bw.Name}: {bw.Value:F0} GB/s"),
                extra: $"fill=\"{colour}\"");
        }
        double kneeX = peak / ceilings.Where(c => c.IsBandwidth).Min(c => c.Value);
        double labelY = double.MaxValue;   // labels from the bottom up, each at least 12 px above the previous
        foreach (var c in compute.OrderBy(c => c.Value))
        {
            bool top = c.Value == peak;
            double y = Y(c.Value);
            double x0 = top ? X(Math.Min(kneeX, Math.Pow(2, xMax))) : L;
            Line(s, x0, y, R, y, top ? "black" : "#888", top ? 2 : 1, top ? null : "4 3");
            labelY = Math.Min(y + 4, labelY - 12);
            string name = c.Name.Replace("independent ", "").Replace(" (one chain of dependent adds)", "");
            Text(s, R + 6, labelY, Inv($"{name}: {c.Value:F1}"));
        }
        foreach (var p in points)
        {
            Dot(s, X(p.Intensity), Y(p.Ours), "#1f77b4", Inv($"{p.Label}: {p.Ours:F1} GFLOP/s"));
            Dot(s, X(p.Intensity), Y(p.Naive), "#d62728", Inv($"{p.Label} naive: {p.Naive:F2} GFLOP/s"));
        }
        Dot(s, L + 14, T + 16, "#1f77b4", null);
        Text(s, L + 24, T + 20, "our GEMM, one thread (blog MLP shapes, 256³, 512³, 1024³)");
        Dot(s, L + 14, T + 34, "#d62728", null);
        Text(s, L + 24, T + 38, "naive i-j-k loop, same shapes");
        return s.Append("</svg>\n").ToString();
    }

    private static string Inv(FormattableString text) => FormattableString.Invariant(text);

    private static void Line(StringBuilder s, double x1, double y1, double x2, double y2, string stroke,
        double width = 1, string? dash = null) =>
        s.Append(Inv($"<line x1=\"{x1:F1}\" y1=\"{y1:F1}\" x2=\"{x2:F1}\" y2=\"{y2:F1}\" stroke=\"{stroke}\" "))
            .Append(Inv($"stroke-width=\"{width}\"{(dash is null ? "" : $" stroke-dasharray=\"{dash}\"")}/>\n"));

    private static void Text(StringBuilder s, double x, double y, string text, string anchor = "start",
        string? extra = null) =>
        s.Append(Inv($"<text x=\"{x:F1}\" y=\"{y:F1}\" text-anchor=\"{anchor}\"{(extra is null ? "" : " " + extra)}>"))
            .Append(System.Security.SecurityElement.Escape(text)).Append("</text>\n");

    private static void Dot(StringBuilder s, double x, double y, string fill, string? title) =>
        s.Append(Inv($"<circle cx=\"{x:F1}\" cy=\"{y:F1}\" r=\"4\" fill=\"{fill}\">"))
            .Append(title is null ? "" : "<title>" + System.Security.SecurityElement.Escape(title) + "</title>")
            .Append("</circle>\n");

    private static float[] Random(int n)
    {
        var a = new float[n];
        new LoRA.Managed.Tensors.TorchGenerator(5).FillUniform(a, -1f, 1f);
        return a;
    }

    // The best of at least 5 runs over about 0.3 s (QuickBench.BestSeconds); the results are summed into a sink
    // that is read afterwards, so the JIT cannot drop the work.
    private static double Best(Func<float> run)
    {
        float sink = 0f;
        double best = QuickBench.BestSeconds(() => sink += run(), 0.3, minReps: 5);
        if (float.IsNaN(sink)) Console.Write("");
        return best;
    }

    // The naive loop's inner step without its strided loads: each add waits for the previous one.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float DotOneSum(float[] a, float[] b, int reps)
    {
        float sum = 0f;
        for (int r = 0; r < reps; r++)
            for (int p = 0; p < a.Length; p++) sum += a[p] * b[p];
        return sum;
    }

    // Four sums: four chains in flight, the same adds and multiplies.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float DotFourSums(float[] a, float[] b, int reps)
    {
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
        for (int r = 0; r < reps; r++)
            for (int p = 0; p < a.Length; p += 4)
            {
                s0 += a[p] * b[p];
                s1 += a[p + 1] * b[p + 1];
                s2 += a[p + 2] * b[p + 2];
                s3 += a[p + 3] * b[p + 3];
            }
        return s0 + s1 + s2 + s3;
    }

    private static float FmaChains(int chains, long iters) => chains switch
    {
        1 => Fma1(iters), 2 => Fma2(iters), 4 => Fma4(iters), 8 => Fma8(iters), _ => FmaPeak.Vector512Chains16(iters),
    };

    // c ← c·m + d with m just below 1: stays finite and normal, and every FMA depends on its chain's previous one.
    private static readonly Vector512<float> M = Vector512.Create(0.999999f), D = Vector512.Create(1e-3f);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Fma1(long iters)
    {
        Vector512<float> m = M, d = D, c0 = d;
        for (long i = 0; i < iters; i++) c0 = Vector512.FusedMultiplyAdd(c0, m, d);
        return c0.ToScalar();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Fma2(long iters)
    {
        Vector512<float> m = M, d = D, c0 = d, c1 = d;
        for (long i = 0; i < iters; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, m, d); c1 = Vector512.FusedMultiplyAdd(c1, m, d);
        }
        return (c0 + c1).ToScalar();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Fma4(long iters)
    {
        Vector512<float> m = M, d = D, c0 = d, c1 = d, c2 = d, c3 = d;
        for (long i = 0; i < iters; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, m, d); c1 = Vector512.FusedMultiplyAdd(c1, m, d);
            c2 = Vector512.FusedMultiplyAdd(c2, m, d); c3 = Vector512.FusedMultiplyAdd(c3, m, d);
        }
        return (c0 + c1 + c2 + c3).ToScalar();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Fma8(long iters)
    {
        Vector512<float> m = M, d = D, c0 = d, c1 = d, c2 = d, c3 = d, c4 = d, c5 = d, c6 = d, c7 = d;
        for (long i = 0; i < iters; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, m, d); c1 = Vector512.FusedMultiplyAdd(c1, m, d);
            c2 = Vector512.FusedMultiplyAdd(c2, m, d); c3 = Vector512.FusedMultiplyAdd(c3, m, d);
            c4 = Vector512.FusedMultiplyAdd(c4, m, d); c5 = Vector512.FusedMultiplyAdd(c5, m, d);
            c6 = Vector512.FusedMultiplyAdd(c6, m, d); c7 = Vector512.FusedMultiplyAdd(c7, m, d);
        }
        return (c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7).ToScalar();
    }

    // Reads every float of the array, passes times, into eight vector sums (so the adds' latency is not the limit).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Read(float[] data, int passes)
    {
        var s0 = Vector512<float>.Zero; var s1 = s0; var s2 = s0; var s3 = s0;
        var s4 = s0; var s5 = s0; var s6 = s0; var s7 = s0;
        ref float start = ref data[0];
        for (int pass = 0; pass < passes; pass++)
            for (nuint i = 0; i + 128 <= (nuint)data.Length; i += 128)
            {
                s0 += Vector512.LoadUnsafe(ref start, i); s1 += Vector512.LoadUnsafe(ref start, i + 16);
                s2 += Vector512.LoadUnsafe(ref start, i + 32); s3 += Vector512.LoadUnsafe(ref start, i + 48);
                s4 += Vector512.LoadUnsafe(ref start, i + 64); s5 += Vector512.LoadUnsafe(ref start, i + 80);
                s6 += Vector512.LoadUnsafe(ref start, i + 96); s7 += Vector512.LoadUnsafe(ref start, i + 112);
            }
        return (s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7).ToScalar();
    }
}
