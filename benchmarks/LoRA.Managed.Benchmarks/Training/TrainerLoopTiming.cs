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
/// the hot methods (tiered compilation); later epochs are "warm". Thread counts and the two ways of stepping (Adam
/// after backward, or each layer inside backward: <see cref="ClassifierTrainingOptions.OptimizerInBackward"/>)
/// alternate on every repetition, and the two ways' final weights are compared bit for bit.
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

        var cold = new Dictionary<(int, bool), double>();
        var warm = new Dictionary<(int, bool), double>();
        var weights = new Dictionary<(int, bool), float[]>();
        for (int rep = 0; rep < repetitions; rep++)
            foreach (int t in threadCounts)
                foreach (bool inBackward in new[] { false, true })
                {
                    double us;
                    using (ComputeThreads.Use(t))
                    {
                        long t0 = Stopwatch.GetTimestamp();
                        var (model, _) = ClassifierTraining.TrainBlogMlp(train,
                            new ClassifierTrainingOptions { Epochs = 1, OptimizerInBackward = inBackward },
                            new TorchGenerator(0));
                        us = Stopwatch.GetElapsedTime(t0).TotalMicroseconds / steps;
                        weights[(t, inBackward)] = model.Parameters().SelectMany(p => p.Data.ToArray()).ToArray();
                    }
                    if (!cold.ContainsKey((t, inBackward))) cold[(t, inBackward)] = us;
                    else warm[(t, inBackward)] = Math.Min(warm.GetValueOrDefault((t, inBackward), double.MaxValue), us);
                }

        var sb = new StringBuilder();
        sb.AppendLine("| threads | Adam | trainer loop, first epoch (µs/step) | trainer loop, best later epoch | " +
            "same weights as after backward |");
        sb.AppendLine("|---:|---|---:|---:|---|");
        foreach (int t in threadCounts)
            foreach (bool inBackward in new[] { false, true })
            {
                bool same = weights[(t, false)].AsSpan().SequenceEqual(weights[(t, inBackward)]);
                sb.AppendLine($"| {t} | {(inBackward ? "in backward" : "after backward")} | " +
                    $"{cold[(t, inBackward)]:F0} | {warm.GetValueOrDefault((t, inBackward)):F0} | {same} |");
            }
        foreach (int t in threadCounts)
        {
            double isolated;
            using (ComputeThreads.Use(t)) isolated = QuickBench.MeasureTrainStep(steps: 200, lora: false).Ms * 1000;
            sb.AppendLine($"isolated step (median), {t} thread(s): {isolated:F0} µs");
        }
        return sb.ToString();
    }
}
