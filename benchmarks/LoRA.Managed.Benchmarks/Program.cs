using BenchmarkDotNet.Running;
using LoRA.Managed.Benchmarks.Quick;

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
        if (args.Contains("--quick"))
        {
            int i = Array.IndexOf(args, "--threads");
            var threadCounts = i >= 0 && i + 1 < args.Length
                ? args[i + 1].Split(',').Select(int.Parse).ToArray()
                : new[] { 1 };
            foreach (int t in threadCounts)
            {
                var result = QuickBench.Run(t);
                Console.WriteLine(result.ToTable());
                Console.WriteLine(result.ToJson());
            }
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
