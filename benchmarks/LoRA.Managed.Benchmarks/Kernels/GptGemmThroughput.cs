using System.Diagnostics;
using LoRA.Managed.Kernels;

namespace LoRA.Managed.Benchmarks.Kernels;

/// <summary>
/// <c>--gpt-gemm [--threads 1,2]</c>: GFLOP/s of <see cref="Gemm"/> on the lm-demo GPT step's products (2048 tokens,
/// width 64, MLP 256, vocab 96) and the blog MLP's, every (thread count) alternated in each repetition so that a
/// shared machine's load falls on all alike; best of the repetitions.
/// </summary>
public static class GptGemmThroughput
{
    /// <summary>The GPT step's products: the forward y = x·Wᵀ (NT), the input gradient dy·W (NN) and the weight
    /// gradient dyᵀ·x (TN) of each Linear(in→out), in → out ∈ {64→64 (q, k, v, o), 64→256, 256→64, 64→96}.</summary>
    public static IEnumerable<GemmShape> Gpt()
    {
        foreach (var (inF, outF) in new[] { (64, 64), (64, 256), (256, 64), (64, 96) })
        {
            yield return new GemmShape(2048, inF, outF, false, true);
            yield return new GemmShape(2048, outF, inF, false, false);
            yield return new GemmShape(outF, 2048, inF, true, false);
        }
    }

    /// <summary>One row per shape: GFLOP/s at each thread count, in the variants of <c>GEMM_VARIANTS</c> (default
    /// <c>0</c>; see <see cref="StepTable"/>), on the shapes of <c>GEMM_SHAPES</c> ("M,K,N,T|F,T|F;…") if
    /// set.</summary>
    public static string Table(int[] threads, bool mlp, double seconds = 0.4)
    {
        var sb = new System.Text.StringBuilder();
        int[] variants = Environment.GetEnvironmentVariable("GEMM_VARIANTS") is { } v
            ? v.Split(',').Select(int.Parse).ToArray() : [0];
        var cols = threads.SelectMany(t => variants.Select(x => (t, x))).ToArray();
        sb.AppendLine("| M | K | N | op | " + string.Join(" | ", cols.Select(c => $"{c.t} thr v{c.x}")) + " |");
        sb.AppendLine("|---:|---:|---:|---|" + string.Concat(cols.Select(_ => "---:|")));
        var shapes = mlp ? GemmShape.Mlp().Where(s => s.M > 16 && s.N > 16) : Gpt();
        if (Environment.GetEnvironmentVariable("GEMM_SHAPES") is { } list)
            shapes = list.Split(';').Select(x => x.Split(',')).Select(f => new GemmShape(int.Parse(f[0]),
                int.Parse(f[1]), int.Parse(f[2]), f[3] == "T", f[4] == "T")).ToArray();
        foreach (var s in shapes)
        {
            var (a, b, c) = s.RandomOperands();
            double[] best = Best(cols, () => Gemm.Multiply(s.TransA, s.TransB, s.M, s.N, s.K, 1f, a, s.Lda, b,
                s.Ldb, 0f, c, s.N), seconds);
            sb.AppendLine($"| {s.M} | {s.K} | {s.N} | {(s.TransA ? 'T' : 'N')}{(s.TransB ? 'T' : 'N')} | " +
                string.Join(" | ", best.Select(t => (s.Flops / t / 1e9).ToString("F1"))) + " |");
        }
        return sb.ToString();
    }

    /// <summary>
    /// The whole GPT training step, and the attention's two batched products (forward and backward through the tape),
    /// in variants chosen by <c>GEMM_VARIANTS</c> (default <c>0,1</c>): v0 as shipped, v1 with the direct path off
    /// (<see cref="Gemm.DirectPathDisabled"/>), v2 with the split by k off (<see cref="Gemm.DepthSplitDisabled"/>), v3
    /// with wide C of 256 rows or more split by rows (<see cref="Gemm.WideColumnSplitDisabled"/>), at
    /// each thread count, all alternated; milliseconds, best of the repetitions.
    /// </summary>
    public static string StepTable(int[] threads, double seconds = 4)
    {
        int[] variants = Environment.GetEnvironmentVariable("GEMM_VARIANTS") is { } v
            ? v.Split(',').Select(int.Parse).ToArray() : [0, 1];
        var cols = threads.SelectMany(t => variants.Select(x => (t, x))).ToArray();
        var sb = new System.Text.StringBuilder();
        sb.AppendLine("| run | " + string.Join(" | ", cols.Select(c => $"ms {c.t} thr v{c.x}"))
            + " |");
        sb.AppendLine("|---|" + string.Concat(cols.Select(_ => "---:|")));
        foreach (var (name, run) in new (string, Action)[]
        {
            ("q·kᵀ, att·v fwd+bwd (128 of 64×64×16)", AttentionProducts()),
            ("lm-demo GPT step", LoRA.Managed.Cli.Bench.QuickBench.CreateGptTrainStep()),
            ("blog MLP step", LoRA.Managed.Cli.Bench.QuickBench.CreateTrainStep(lora: false)),
        })
        {
            double[] best = Best(cols, run, seconds);
            sb.AppendLine($"| {name} | " + string.Join(" | ", best.Select(t => (t * 1e3).ToString("F3"))) + " |");
        }
        return sb.ToString();
    }

    /// <summary>q·kᵀ then att·v on (32, 4, 64, 16) heads, and their backward, through the tape.</summary>
    private static Action AttentionProducts()
    {
        var g = new LoRA.Managed.Tensors.TorchGenerator(3);
        LoRA.Managed.Tensors.Tensor Make(params int[] shape)
        {
            var t = new LoRA.Managed.Tensors.Tensor(shape) { RequiresGrad = true };
            g.FillUniform(t.Data, -1f, 1f);
            return t;
        }
        var q0 = Make(32, 4, 64, 16);
        var k0 = Make(32, 4, 64, 16);
        var v0 = Make(32, 4, 64, 16);
        float[] seed = new float[32 * 4 * 64 * 16];
        g.FillUniform(seed, -1f, 1f);
        var arena = new LoRA.Managed.Autograd.TensorArena();
        return () =>
        {
            using var scope = arena.Activate();
            // Scaled by 1, so that q, k and v are op outputs with pooled gradients, as in the model.
            var q = LoRA.Managed.Autograd.Functional.Scale(q0, 1f);
            var k = LoRA.Managed.Autograd.Functional.Scale(k0, 1f);
            var v = LoRA.Managed.Autograd.Functional.Scale(v0, 1f);
            var att = LoRA.Managed.Autograd.Functional.BatchedMatMul(q, k, transposeB: true);
            var y = LoRA.Managed.Autograd.Functional.BatchedMatMul(att, v);
            LoRA.Managed.Autograd.Tape.Current.Backward(y, seed);
        };
    }

    private static double[] Best((int t, int x)[] threads, Action run, double seconds)
    {
        var best = Enumerable.Repeat(double.MaxValue, threads.Length).ToArray();
        foreach (var (_, x) in threads) { Variant(x); for (int w = 0; w < 20; w++) run(); }
        for (int w = 0; w < 20; w++) run();
        long start = Stopwatch.GetTimestamp();
        for (int rep = 0; rep < 10 || Stopwatch.GetElapsedTime(start).TotalSeconds < seconds; rep++)
            for (int t = 0; t < threads.Length; t++)
            {
                using var scope = ComputeThreads.Use(threads[t].t);
                Variant(threads[t].x);
                run();
                long t0 = Stopwatch.GetTimestamp();
                run();
                best[t] = Math.Min(best[t], Stopwatch.GetElapsedTime(t0).TotalSeconds);
            }
        Variant(0);
        return best;
    }

    // v0: as shipped; v1: no direct path; v2: no split by k; v3: C from 256 rows split by rows even when wide.
    private static void Variant(int x)
    {
        Gemm.DirectPathDisabled = x == 1;
        Gemm.DepthSplitDisabled = x == 2;
        Gemm.WideColumnSplitDisabled = x == 3;
    }
}
