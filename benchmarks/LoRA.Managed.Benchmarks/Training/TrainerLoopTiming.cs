using System.Diagnostics;
using System.Text;
using LoRA.Managed.Cli.Bench;
using LoRA.Managed.Data;
using LoRA.Managed.Kernels;
using LoRA.Managed.Recipes;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Benchmarks.Training;

/// <summary>
/// The blog's base training as the demo runs it (<see cref="ClassifierTraining.TrainBlogMlp"/>: the one trainer loop,
/// the data loader filling each batch, Adam) on an MNIST-sized set of random images, beside the isolated step of
/// <see cref="QuickBench.MeasureTrainStep"/>. The first epoch of a process is "cold": the runtime is still compiling
/// the hot methods (tiered compilation); later epochs are "warm". Thread counts alternate on every repetition.
/// </summary>
public static class TrainerLoopTiming
{
    private const int Images = 48_200; // the blog's digits 0–7 in MNIST's training set: 754 batches of 64

    /// <summary>µs per step of the trainer loop, cold and warm, and of the isolated step, per thread count.</summary>
    public static string Table(int[] threadCounts, int repetitions = 3)
    {
        var g = new TorchGenerator(1);
        var pixels = new byte[Images * 784];
        var labels = new byte[Images];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)g.NextInt(256);
        for (int i = 0; i < labels.Length; i++) labels[i] = (byte)g.NextInt(8);
        var train = new MnistDataset(pixels, labels, 784);
        int steps = (Images + 63) / 64;

        var cold = new Dictionary<int, double>();
        var warm = threadCounts.ToDictionary(t => t, _ => double.MaxValue);
        for (int rep = 0; rep < repetitions; rep++)
            foreach (int t in threadCounts)
            {
                double us = EpochMicroseconds(train, t) / steps;
                if (!cold.ContainsKey(t)) cold[t] = us;
                else warm[t] = Math.Min(warm[t], us);
            }

        var sb = new StringBuilder();
        sb.AppendLine($"| threads | trainer loop, first epoch (µs/step) | trainer loop, best later epoch | " +
            $"isolated step (median) |");
        sb.AppendLine("|---:|---:|---:|---:|");
        foreach (int t in threadCounts)
        {
            double isolated;
            using (ComputeThreads.Use(t)) isolated = QuickBench.MeasureTrainStep(steps: 200, lora: false).Ms * 1000;
            sb.AppendLine($"| {t} | {cold[t]:F0} | {warm[t]:F0} | {isolated:F0} |");
        }
        return sb.ToString();
    }

    /// <summary>Wall µs of one epoch of the blog's base training (seed 0) through the trainer loop on
    /// <paramref name="threads"/> threads.</summary>
    internal static double EpochMicroseconds(MnistDataset train, int threads)
    {
        using var scope = ComputeThreads.Use(threads);
        long t0 = Stopwatch.GetTimestamp();
        ClassifierTraining.TrainBlogMlp(train, new ClassifierTrainingOptions { Epochs = 1 }, new TorchGenerator(0));
        return Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
    }
}
