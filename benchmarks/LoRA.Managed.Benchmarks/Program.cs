using BenchmarkDotNet.Running;
using LoRA.Managed.Cli.Bench;

namespace LoRA.Managed.Benchmarks;

/// <summary>
/// Entry point. <c>--quick [--threads N]</c> runs <see cref="QuickBench"/> (a few seconds) and prints a
/// table and its JSON; anything else goes to BenchmarkDotNet's switcher, e.g. <c>--filter '*Gemm*'</c>.
/// </summary>
public static class Program
{
    /// <summary>Runs QuickBench or the BenchmarkDotNet suite.</summary>
    public static void Main(string[] args)
    {
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
        if (args.Contains("--profile"))
        {
            foreach (int t in ThreadCounts(args))
            {
                var ops = StepProfile.Run(t);
                var (stepMs, _) = QuickBench.MeasureTrainStep(steps: 200, lora: false);
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
