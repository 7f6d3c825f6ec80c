using System.Diagnostics;
using LoRA.Managed.Data;

namespace LoRA.Managed.Cli;

/// <summary>MNIST's two splits, where they came from and how long loading took.</summary>
internal sealed record LoadedMnist(MnistDataset Train, MnistDataset Test, double Seconds)
{
    /// <summary>Locates (fetching if needed) and reads both splits.</summary>
    public static LoadedMnist Load(CliContext context, string? dataDirectory, bool normalize)
    {
        var clock = Stopwatch.StartNew();
        MnistFiles files = MnistFiles.Locate(dataDirectory);
        PixelScale scale = normalize ? PixelScale.MinusOneToOne : PixelScale.Raw;
        var train = MnistDataset.Load(files, train: true, scale);
        var test = MnistDataset.Load(files, train: false, scale);
        double seconds = clock.Elapsed.TotalSeconds;
        context.Output.WriteLine($"MNIST from {files.Directory}: {train.Count:N0} train, {test.Count:N0} test " +
            $"images ({seconds:F2} s)");
        return new LoadedMnist(train, test, seconds);
    }
}
