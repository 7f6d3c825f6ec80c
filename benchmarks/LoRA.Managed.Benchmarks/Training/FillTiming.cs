using System.Diagnostics;
using LoRA.Managed.Data;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Benchmarks.Training;

/// <summary>The data loader's batch fill over an MNIST-sized set with 16 MB of other traffic between batches (as a
/// training step's), median µs per batch.</summary>
public static class FillTiming
{
    /// <summary>Median and 10th percentile µs of a batch fill.</summary>
    public static string Run(int batches = 2000)
    {
        var g = new TorchGenerator(1);
        const int images = 48_200;
        var pixels = new byte[images * 784];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)g.NextInt(256);
        var loader = new DataLoader(new MnistDataset(pixels, new byte[images], 784), 64, shuffle: true, generator: g);
        var other = new float[4 << 20];
        var times = new double[batches];
        IEnumerator<Batch> e = loader.GetEnumerator();
        for (int b = 0; b < batches; b++)
        {
            for (int i = 0; i < other.Length; i += 16) other[i] += 1f;
            long t0 = Stopwatch.GetTimestamp();
            if (!e.MoveNext()) { e = loader.GetEnumerator(); e.MoveNext(); }
            times[b] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
        }
        Array.Sort(times);
        return $"batch fill: median {times[batches / 2]:F1} µs, 10th percentile {times[batches / 10]:F1} µs";
    }
}
