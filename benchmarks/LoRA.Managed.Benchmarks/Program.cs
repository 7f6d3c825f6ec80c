using BenchmarkDotNet.Running;
using LoRA.Managed.Cli.Bench;
using LoRA.Managed.Kernels;

namespace LoRA.Managed.Benchmarks;

/// <summary>
/// Entry point. With <c>--threads 1,2</c> (default 1): <c>--quick</c> runs <see cref="QuickBench"/> (a few
/// seconds; the same as <c>lora bench</c>) and prints a table and its JSON; <c>--scaling</c> compares the thread
/// counts side by side (<see cref="ThreadScaling"/>); <c>--profile</c> times each kernel of a training step
/// (<see cref="StepProfile"/>); <c>--stages</c> measures each step from the naive GEMM to ours
/// (<see cref="GemmStagesBench"/>, threaded row at the largest count); <c>--roofline [--svg FILE]</c> measures one
/// core's ceilings and sets the GEMM beside them (<see cref="Kernels.Roofline"/>); <c>--trainer</c> times the blog's
/// base training loop per step, cold and warm, beside the isolated step (<see cref="Training.TrainerLoopTiming"/>);
/// <c>--ops</c> breaks the MLP, LoRA and GPT steps down op by op inside the real step
/// (<see cref="Training.OpProfileBench"/>); <c>--quant-gemm [--rows N]</c> sets the quantised base's training-shape
/// products (256 rows unless given) beside the float GEMM (<see cref="Kernels.QuantGemmThroughput"/>);
/// <c>--causal</c> times attention's causal products against full ones (1 thread, alternated).
/// <c>--adam-state [STEPS]</c> times Adam on the blog run's real state after STEPS steps (1,200 unless given), with
/// and without its subnormal moments (<see cref="Training.AdamRealState"/>).
/// <c>--gpt-gemm [--mlp | --step]</c> times the GPT step's (or the MLP's) products, or the GPT and MLP steps,
/// with <see cref="Gemm.DirectPathDisabled"/> off and on side by side (<see cref="Kernels.GptGemmThroughput"/>).
/// Anything else goes to BenchmarkDotNet's switcher, e.g. <c>--filter '*Gemm*'</c>.
/// <c>--first-epoch</c> times the demo's first two epochs by phase in windows of steps, without and with its image
/// bytes read once first (<see cref="Training.FirstEpochTiming"/>).
/// <c>--two-cores</c> times what the MLP step loses on two threads, item by item
/// (<see cref="Training.TwoCoreBudget"/>).
/// <c>--scoring</c> times scoring's cached attention (rows and products) and loss (before and after) side by side
/// (<see cref="ScoringBench"/>).
/// <c>--tokenizers DIR_OR_JSON,... [--text FILE]</c> measures tokenizer encoding throughput
/// (<see cref="Text.TokenizerThroughput"/>).
/// </summary>
public static class Program
{
    /// <summary>Runs QuickBench or the BenchmarkDotNet suite.</summary>
    public static void Main(string[] args)
    {
        if (args.Contains("--tokenizers"))
        {
            int i = Array.IndexOf(args, "--tokenizers"), t = Array.IndexOf(args, "--text");
            string text = t >= 0 && t + 1 < args.Length ? File.ReadAllText(args[t + 1])
                : Text.TokenizerThroughput.DefaultText();
            Console.WriteLine(Text.TokenizerThroughput.Table(args[i + 1].Split(','), text));
            return;
        }
        if (args.Length >= 3 && args[0] == "--hf")
        {
            Console.WriteLine(HfLmBench.Run(args[1], args[2], ThreadCounts(args).Max()));
            return;
        }
        if (args.Contains("--scoring"))
        {
            Console.WriteLine(ScoringBench.Table(ThreadCounts(args)));
            return;
        }
        if (args.Contains("--memory"))
        {
            Console.WriteLine(Kernels.Roofline.MemoryAcrossCores());
            return;
        }
        if (args.Contains("--roofline"))
        {
            var (ceilings, points) = Kernels.Roofline.Measure();
            Console.WriteLine(Kernels.Roofline.Tables(ceilings, points));
            double peak = Kernels.Roofline.TwoCoreFmaPeak();
            Console.WriteLine(FormattableString.Invariant(
                $"two cores at once, Vector{FmaPeak.VectorBits} FMA, {FmaPeak.Chains} chains each: {peak:F1} GFLOP/s"));
            Console.WriteLine(Kernels.Roofline.MemoryAcrossCores());
            int svg = Array.IndexOf(args, "--svg");
            if (svg >= 0 && svg + 1 < args.Length)
                File.WriteAllText(args[svg + 1], Kernels.Roofline.Svg(ceilings, points));
            return;
        }
        if (args.Contains("--stages"))
        {
            Console.WriteLine(GemmStagesBench.Table(ThreadCounts(args).Max()));
            return;
        }
        if (args.Contains("--scaling"))
        {
            int[] threads = ThreadCounts(args);
            Console.WriteLine(ThreadScaling.Table(threads));
            Console.WriteLine(ThreadScaling.StepTable(threads));
            return;
        }
        if (args.Contains("--causal"))
        {
            Console.WriteLine(args.Contains("--products")
                ? Kernels.CausalProducts.Products(64) + Kernels.CausalProducts.Products(128)
                : Kernels.CausalProducts.Table());
            return;
        }
        if (args.Contains("--gpt-gemm"))
        {
            if (args.Contains("--step")) Console.WriteLine(Kernels.GptGemmThroughput.StepTable(ThreadCounts(args)));
            else Console.WriteLine(Kernels.GptGemmThroughput.Table(ThreadCounts(args), args.Contains("--mlp")));
            return;
        }
        if (args.Contains("--quant-gemm"))
        {
            int r = Array.IndexOf(args, "--rows");
            int rows = r >= 0 && r + 1 < args.Length ? int.Parse(args[r + 1]) : 256;
            foreach (int t in ThreadCounts(args)) Console.WriteLine(Kernels.QuantGemmThroughput.Table(t, rows));
            return;
        }
        if (args.Contains("--ops"))
        {
            Console.WriteLine(Training.OpProfileBench.Tables(ThreadCounts(args), llama: args.Contains("--llama")));
            return;
        }
        if (args.Contains("--first-epoch"))
        {
            foreach (int t in ThreadCounts(args))
            {
                Console.WriteLine(Training.FirstEpochTiming.Table(t, touch: false));
                Console.WriteLine(Training.FirstEpochTiming.Table(t, touch: true));
            }
            return;
        }
        if (args.Contains("--two-cores"))
        {
            Console.WriteLine(Training.TwoCoreBudget.Table());
            return;
        }
        if (args.Contains("--phases"))
        {
            Console.WriteLine(Training.StepPhases.Table(ThreadCounts(args)));
            return;
        }
        if (args.Contains("--fill"))
        {
            Console.WriteLine(Training.FillTiming.Run());
            return;
        }
        if (args.Contains("--adam-state"))
        {
            int at = Array.IndexOf(args, "--adam-state");
            int steps = at + 1 < args.Length && int.TryParse(args[at + 1], out int n) ? n : 1200;
            Console.WriteLine(Training.AdamRealState.Table(steps));
            return;
        }
        if (args.Contains("--adam-cache"))
        {
            Console.WriteLine(Training.AdamCacheTiming.Table());
            Console.WriteLine(Training.AdamVariants.Table());
            return;
        }
        if (args.Contains("--fusion"))
        {
            Console.WriteLine(Training.FusionTiming.Table(ThreadCounts(args)));
            return;
        }
        if (args.Contains("--trainer"))
        {
            Console.WriteLine(Training.TrainerLoopTiming.Table(ThreadCounts(args)));
            return;
        }
        if (args.Contains("--profile"))
        {
            foreach (int t in ThreadCounts(args))
            {
                var ops = StepProfile.Run(t);
                double stepMs;
                using (ComputeThreads.Use(t)) stepMs = QuickBench.MeasureTrainStep(steps: 200, lora: false).Ms;
                Console.WriteLine($"threads = {t}");
                Console.WriteLine(StepProfile.ToTable(ops, stepMs));
            }
            return;
        }
        if (args.Contains("--quick"))
        {
            foreach (int t in ThreadCounts(args))
            {
                var result = QuickBench.Run(t);
                Console.WriteLine(result.ToTable());
                Console.WriteLine(result.ToJson());
            }
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }

    private static int[] ThreadCounts(string[] args)
    {
        int i = Array.IndexOf(args, "--threads");
        return i >= 0 && i + 1 < args.Length ? args[i + 1].Split(',').Select(int.Parse).ToArray() : new[] { 1 };
    }
}
