using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using LoRA.Managed.Models;
using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Cli.Bench;

/// <summary>One GEMM shape's measurement: our GFLOP/s and the naive i-j-k twin's.</summary>
/// <param name="M">Rows of C.</param>
/// <param name="K">The shared dimension.</param>
/// <param name="N">Columns of C.</param>
/// <param name="TransA">op(A) = Aᵀ (A stored k×m).</param>
/// <param name="TransB">op(B) = Bᵀ (B stored n×k).</param>
/// <param name="Gflops">Our <see cref="Gemm"/>: 2·m·n·k / best time, in 10⁹ flop/s.</param>
/// <param name="GflopsNaive"><see cref="GemmReference"/> on the same shape (see
/// <see cref="QuickBench.NaiveMaxMacs"/>).</param>
public sealed record GemmMeasurement(
    [property: JsonPropertyName("m")] int M,
    [property: JsonPropertyName("k")] int K,
    [property: JsonPropertyName("n")] int N,
    [property: JsonPropertyName("trans_a")] bool TransA,
    [property: JsonPropertyName("trans_b")] bool TransB,
    [property: JsonPropertyName("gflops")] double Gflops,
    [property: JsonPropertyName("gflops_naive")] double GflopsNaive);

/// <summary>What <see cref="QuickBench.Run"/> measured; serialises to the JSON that <c>lora bench</c> prints.</summary>
/// <param name="Gemm">One entry per GEMM shape.</param>
/// <param name="TrainStepMs">Median time of one forward+backward+Adam step of <see cref="Mlp.Blog"/> at batch 64, in
/// ms.</param>
/// <param name="LoraStepMs">The same for the blog's LoRA fine-tuning step (rank 4 on layers.5, base frozen).</param>
/// <param name="AllocatedBytesPerStep">Managed bytes the calling thread allocated per training step.</param>
/// <param name="Threads"><see cref="ComputeThreads.Max"/> during the run.</param>
/// <param name="FmaPeakGflops"><see cref="FmaPeak.Measure"/> on <paramref name="Threads"/> threads at once.</param>
/// <param name="VectorBits">The width that peak was measured at (<see cref="FmaPeak.VectorBits"/>).</param>
/// <param name="TrainStepGflops">The train step's GEMM flops (<see cref="QuickBench.TrainStepFlops"/>) over
/// <paramref name="TrainStepMs"/>.</param>
/// <param name="SpeedupVsOneThread">With more than one thread: the train step's best time on one thread over its best
/// on <paramref name="Threads"/>, the two counts alternating in one loop; null on one thread.</param>
/// <param name="GptSpeedupVsOneThread">The same for <c>lm-demo</c>'s GPT training step
/// (<see cref="QuickBench.CreateGptTrainStep"/>); null on one thread.</param>
public sealed record QuickBenchResult(
    [property: JsonPropertyName("gemm")] IReadOnlyList<GemmMeasurement> Gemm,
    [property: JsonPropertyName("train_step_ms")] double TrainStepMs,
    [property: JsonPropertyName("lora_step_ms")] double? LoraStepMs,
    [property: JsonPropertyName("allocated_bytes_per_step")] long AllocatedBytesPerStep,
    [property: JsonPropertyName("threads")] int Threads,
    [property: JsonPropertyName("fma_peak_gflops")] double FmaPeakGflops,
    [property: JsonPropertyName("vector_bits")] int VectorBits,
    [property: JsonPropertyName("train_step_gflops")] double TrainStepGflops,
    [property: JsonPropertyName("train_step_speedup_vs_one_thread")] double? SpeedupVsOneThread,
    [property: JsonPropertyName("gpt_step_speedup_vs_one_thread")] double? GptSpeedupVsOneThread)
{
    /// <summary>The train step's share of the FMA peak: <see cref="TrainStepGflops"/> over
    /// <see cref="FmaPeakGflops"/> (issue 20's target is 0.6 on two threads).</summary>
    [JsonPropertyName("train_step_peak_fraction")]
    public double TrainStepPeakFraction => FmaPeakGflops > 0 ? TrainStepGflops / FmaPeakGflops : 0;

    /// <summary>Indented JSON with the snake_case keys above.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, CliJsonContext.Default.QuickBenchResult);

    /// <summary>A plain-text table of the GEMM figures and the step time.</summary>
    public string ToTable()
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"threads = {Threads}");
        sb.AppendLine("    M     K     N  tA tB   GFLOP/s  naive GFLOP/s  speed-up");
        foreach (var g in Gemm)
            sb.AppendLine($"{g.M,5} {g.K,5} {g.N,5}  {(g.TransA ? 'T' : 'N')}  {(g.TransB ? 'T' : 'N')}  " +
                $"{g.Gflops,8:F1}  {g.GflopsNaive,13:F2}  {g.Gflops / g.GflopsNaive,7:F1}×");
        sb.AppendLine($"train step (Mlp.Blog, batch 64, Adam): {TrainStepMs:F3} ms; LoRA step (rank 4 on layers.5): " +
            $"{LoraStepMs:F3} ms; {AllocatedBytesPerStep:N0} bytes allocated per step");
        sb.AppendLine($"FMA peak, {Threads} thread{(Threads > 1 ? "s" : "")} at once (Vector{VectorBits}, " +
            $"{FmaPeak.Chains} chains each): {FmaPeakGflops:F1} GFLOP/s");
        sb.AppendLine($"train step: {QuickBench.TrainStepFlops / 1e6:F1} MFLOP of GEMMs in {TrainStepMs:F3} ms = " +
            $"{TrainStepGflops:F1} GFLOP/s = {TrainStepPeakFraction:P0} of that peak");
        if (SpeedupVsOneThread is double speedup)
            sb.AppendLine($"train step, {Threads} threads against 1 (best times, alternating): {speedup:F2}× faster");
        if (GptSpeedupVsOneThread is double gpt)
            sb.AppendLine($"lm-demo GPT step, {Threads} threads against 1 (best times, alternating): {gpt:F2}× faster");
        return sb.ToString();
    }
}

/// <summary>
/// A few-second, in-process measurement of the engine's hot paths: <see cref="Gemm"/> on the blog MLP's
/// shapes (each layer's forward, weight gradient and input gradient at batch 64) and on squares, against
/// the naive twin, plus one training step. Figures are best-of-several timings (the least disturbed by
/// other processes on a shared machine); for a careful study use the BenchmarkDotNet classes instead.
/// </summary>
public static class QuickBench
{
    /// <summary>The batch size of the MLP shapes.</summary>
    public const int Batch = 64;

    /// <summary>
    /// The naive twin is timed on at most this many multiply-adds: for larger shapes it runs on a band of
    /// C's first rows only. Every row of the i-j-k loop does the same work over the whole of B, so the
    /// band's rate is the full product's rate; a full naive 1024² product would take several seconds.
    /// </summary>
    public const long NaiveMaxMacs = 1L << 25;

    /// <summary>The blog MLP's linear layers, (in, out), as <see cref="Mlp.Blog"/> builds them.</summary>
    public static IReadOnlyList<(int In, int Out)> Layers { get; } = [(784, 512), (512, 256), (256, 10)];

    /// <summary>
    /// The flops of one training step's products at batch 64, the count issue 20's 580 GFLOP is made of: each layer's
    /// forward and weight gradient, and the input gradient of every layer but the first (nothing needs ∂x of the
    /// images); 2 flops per multiply-add. Bias, ReLU, the loss and Adam are left out: a few hundred thousand flops
    /// against 154 million.
    /// </summary>
    public static double TrainStepFlops
    {
        get
        {
            double flops = 0;
            for (int i = 0; i < Layers.Count; i++)
                flops += (i == 0 ? 2 : 3) * 2.0 * Batch * Layers[i].In * Layers[i].Out;
            return flops;
        }
    }

    /// <summary>
    /// The shapes measured: for each Linear(in→out) of the blog MLP, forward <c>y = x·Wᵀ</c>
    /// (M=64, K=in, N=out, B transposed), weight gradient <c>dW = dyᵀ·x</c> (M=out, K=64, N=in, A transposed)
    /// and input gradient <c>dx = dy·W</c> (M=64, K=out, N=in); then squares 256, 512, 1024.
    /// </summary>
    public static IReadOnlyList<(int M, int K, int N, bool TransA, bool TransB)> Shapes()
    {
        var list = new List<(int, int, int, bool, bool)>();
        foreach (var (inF, outF) in Layers)
        {
            list.Add((Batch, inF, outF, false, true));
            list.Add((outF, Batch, inF, true, false));
            list.Add((Batch, outF, inF, false, false));
        }
        foreach (int s in new[] { 256, 512, 1024 }) list.Add((s, s, s, false, false));
        return list;
    }

    /// <summary>Runs every measurement with <see cref="ComputeThreads.Max"/> set to <paramref name="threads"/>
    /// (restored after).</summary>
    /// <param name="threads">Threads the kernels may use.</param>
    /// <param name="secondsPerShape">Time budget for our GEMM on each shape.</param>
    public static QuickBenchResult Run(int threads = 1, double secondsPerShape = 0.15)
    {
        using (ComputeThreads.Use(threads))
        {
            WarmUp(Math.Min(0.5, secondsPerShape * 3));
            var gemm = new List<GemmMeasurement>();
            foreach (var (m, k, n, ta, tb) in Shapes())
                gemm.Add(MeasureGemm(m, k, n, ta, tb, secondsPerShape));
            double warmUp = Math.Min(1.0, secondsPerShape * 6);
            var (stepMs, bytes) = MeasureTrainStep(steps: 100, lora: false, warmUp);
            var (loraMs, loraBytes) = MeasureTrainStep(steps: 100, lora: true, warmUp);
            double? speedup = null, gptSpeedup = null;
            if (threads > 1)
            {
                speedup = SpeedupOverOneThread(CreateTrainStep(lora: false), threads, warmUp, secondsPerShape * 10);
                gptSpeedup = SpeedupOverOneThread(CreateGptTrainStep(), threads, warmUp, secondsPerShape * 10);
            }
            double peak = FmaPeak.Measure(threads);
            return new QuickBenchResult(gemm, stepMs, loraMs, Math.Max(bytes, loraBytes), threads, peak,
                FmaPeak.VectorBits, TrainStepFlops / (stepMs * 1e-3) / 1e9, speedup, gptSpeedup);
        }
    }

    // Untimed steps, at least 20 and for at least `seconds`: the runtime recompiles hot methods only after ~100 ms.
    private static void WarmUpStep(Action step, double seconds)
    {
        long warm = Stopwatch.GetTimestamp();
        for (int i = 0; i < 20 || Stopwatch.GetElapsedTime(warm).TotalSeconds < seconds; i++) step();
    }

    // One thread's best step over `threads` threads' best, the two alternating (ThreadScaling.Interleaved) after the
    // step has run for the warm-up on `threads` threads.
    private static double SpeedupOverOneThread(Action step, int threads, double warmUpSeconds, double seconds)
    {
        WarmUpStep(step, warmUpSeconds);
        double[] best = ThreadScaling.Interleaved([1, threads], step, seconds);
        return best[0] / best[1];
    }

    /// <summary>
    /// Runs both GEMMs on small shapes for half a second first: the runtime compiles methods with loops
    /// at a lower tier and recompiles hot ones in the background after ~100 ms, so without this the
    /// first shape measured would time partly unoptimised code.
    /// </summary>
    public static void WarmUp(double seconds = 0.5)
    {
        float[] a = new float[64 * 256], b = new float[256 * 256], c = new float[64 * 256];
        long t0 = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(t0).TotalSeconds < seconds)
            foreach (var (ta, tb) in new[] { (false, false), (false, true), (true, false), (true, true) })
            {
                Gemm.Multiply(ta, tb, 64, 256, 256, 1f, a, ta ? 64 : 256, b, 256, 0.5f, c, 256);
                Gemm.Multiply(ta, tb, 63, 33, 17, 1f, a, ta ? 63 : 17, b, tb ? 17 : 33, 0f, c, 33);
                GemmReference.Multiply(ta, tb, 8, 16, 16, 1f, a, ta ? 8 : 16, b, 16, 0f, c, 16);
            }
    }

    /// <summary>Our GEMM and the naive twin on one shape, alpha 1 and beta 0, random operands.</summary>
    public static GemmMeasurement MeasureGemm(int m, int k, int n, bool transA, bool transB, double seconds = 0.15)
    {
        var g = new TorchGenerator(42);
        float[] a = new float[m * k], b = new float[k * n], c = new float[m * n];
        g.FillUniform(a, -1f, 1f);
        g.FillUniform(b, -1f, 1f);
        int lda = transA ? m : k, ldb = transB ? k : n;
        double flops = 2.0 * m * n * k;
        double ours = BestSeconds(() => Gemm.Multiply(transA, transB, m, n, k, 1f, a, lda, b, ldb, 0f, c, n), seconds);

        // The naive twin on a band of rows (all of them when small enough); with transA the band is
        // the first columns of the stored A, which op(A)'s leading rows are.
        int rows = (int)Math.Clamp(NaiveMaxMacs / ((long)n * k), 1, m);
        double naive = BestSeconds(() => GemmReference.Multiply(transA, transB, rows, n, k, 1f, a, lda, b, ldb,
            0f, c, n),
            seconds, maxReps: 5);
        return new GemmMeasurement(m, k, n, transA, transB, flops / ours / 1e9, 2.0 * rows * n * k / naive / 1e9);
    }

    /// <summary>
    /// Times one forward+backward+Adam step of <see cref="Mlp.Blog"/> (or, with <paramref name="lora"/>, of the
    /// blog's rank-4 SVD adapter on <c>layers.5</c> with the base frozen) on a random batch of 64, inside a
    /// <see cref="TensorArena"/> as the trainer runs it; returns the
    /// median step in ms and the bytes the calling thread allocated per step (worker threads of a
    /// parallel GEMM, if any, are not counted by <see cref="GC.GetAllocatedBytesForCurrentThread"/>).
    /// </summary>
    /// <param name="steps">Timed steps (the median is returned).</param>
    /// <param name="lora">Time the LoRA fine-tuning step instead of the base model's.</param>
    /// <param name="warmUpSeconds">Untimed steps first, at least 20 and for at least this long: the runtime compiles
    /// methods with loops at a lower tier and recompiles the hot ones only after ~100 ms, so a step timed
    /// too early runs partly unoptimised code (on one thread here: a 3.8 ms median after 20 warm-up steps, 1.8 ms after
    /// 200).</param>
    public static (double Ms, long BytesPerStep) MeasureTrainStep(int steps, bool lora, double warmUpSeconds = 1.0)
    {
        Action step = CreateTrainStep(lora);
        WarmUpStep(step, warmUpSeconds);
        var times = new double[steps];
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < steps; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            step();
            times[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        long bytes = (GC.GetAllocatedBytesForCurrentThread() - before) / steps;
        Array.Sort(times);
        return (times[steps / 2], bytes);
    }

    /// <summary>
    /// One training step of <see cref="Mlp.Blog"/> (or its LoRA fine-tuning) on a fixed random batch of 64,
    /// run in its own <see cref="TensorArena"/>; each call of the returned action is one step.
    /// </summary>
    public static Action CreateTrainStep(bool lora)
    {
        var gen = new TorchGenerator(7);
        Module model = Mlp.Blog(gen);
        if (lora)
            model = LoraModel.GetPeftModel(model,
                new LoraConfig { Rank = 4, Alpha = 1, Init = LoraInit.Svd, Scaling = LoraScaling.Alpha,
                    TargetModules = ["layers.5"] }, gen);
        var opt = new Adam(model.TrainableParameters(), lora ? 5e-3 : 1e-3);
        var arena = new TensorArena();
        var x = new Tensor(Batch, 784);
        gen.FillUniform(x.Data, 0f, 1f);
        var labels = new int[Batch];
        for (int i = 0; i < Batch; i++) labels[i] = gen.NextInt(10);
        return () =>
        {
            using var scope = arena.Activate();
            opt.ZeroGrad();
            var l = Functional.CrossEntropy(model.Forward(x), labels);
            l.Backward();
            opt.Step();
        };
    }

    /// <summary>
    /// One training step of <c>lm-demo</c>'s character GPT (vocabulary 96, 2 layers, 4 heads, width 64, context 64,
    /// batch 32, no dropout) on fixed random tokens: forward, cross-entropy over every position, backward and AdamW
    /// (weight decay 0.1), in its own <see cref="TensorArena"/>. <c>benchmarks/pytorch/gpt_step.py</c> is its PyTorch
    /// twin.
    /// </summary>
    public static Action CreateGptTrainStep()
    {
        const int batch = 32, time = 64;
        var gen = new TorchGenerator(7);
        var config = new GptConfig { VocabSize = 96, BlockSize = time, Layers = 2, Heads = 4, Embed = 64 };
        var model = new GptModel(config, gen);
        var opt = new AdamW(model.TrainableParameters(), 3e-3, weightDecay: 0.1);
        var arena = new TensorArena();
        int[] ids = new int[batch * time], targets = new int[batch * time];
        for (int i = 0; i < ids.Length; i++) { ids[i] = gen.NextInt(96); targets[i] = gen.NextInt(96); }
        return () =>
        {
            using var scope = arena.Activate();
            Functional.CrossEntropy(model.Forward(ids, batch, time), targets).Backward();
            opt.StepAndZeroGrad();
        };
    }

    /// <summary>Best time of one call, the least disturbed by other processes on a shared machine: warm up, then
    /// repeat until the budget is spent (at least <paramref name="minReps"/>, at most
    /// <paramref name="maxReps"/>).</summary>
    public static double BestSeconds(Action run, double budgetSeconds, int maxReps = 10_000, int minReps = 3)
    {
        run();
        double best = double.MaxValue, spent = 0;
        for (int rep = 0; rep < maxReps && (rep < minReps || spent < budgetSeconds); rep++)
        {
            long t0 = Stopwatch.GetTimestamp();
            run();
            double s = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            best = Math.Min(best, s);
            spent += s;
        }
        return best;
    }
}
