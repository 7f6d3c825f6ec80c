using LoRA.Managed.Data;
using LoRA.Managed.Recipes;

namespace LoRA.Managed.Samples;

/// <summary>The README's recipe example: the blog's whole experiment as one library call, options in, figures
/// out.</summary>
public static class RecipeSample
{
    /// <summary>Runs the blog experiment for one epoch of base training and three of the adapter on 2,000 synthetic
    /// 28×28 "digits".</summary>
    public static void Run(TextWriter o)
    {
        var (train, test) = (Synthetic(2000, seed: 1), Synthetic(500, seed: 2));
        // region: recipe
        // cancel it (e.g. from Ctrl+C) to stop between two steps
        using var stop = new CancellationTokenSource();
        BlogExperimentResult r = BlogExperiment.Run(train, test,
            new BlogExperimentOptions { Seed = 0, Epochs = 1, LoraEpochs = 3 }, observer: null, stop.Token);
        o.WriteLine($"adapter: {r.LoraParameters:N0} of {r.BaseParameters:N0} parameters");
        o.WriteLine($"8-9 before {r.Base89.Accuracy:F2}, after {r.Lora89.Accuracy:F2}; 0-7 after " +
            $"{r.Lora0To7.Accuracy:F2}");
        r.Adapted.SaveAdapter(Path.Combine(Path.GetTempPath(), "blog-adapter"));   // PEFT's two files
        // endregion
    }

    // Digit d lights up rows 2d..2d+2 of a 28×28 image: easy to tell apart, and no download needed.
    private static MnistDataset Synthetic(int count, ulong seed)
    {
        var rng = new Tensors.TorchGenerator(seed);
        var pixels = new byte[count * 784];
        var labels = new byte[count];
        for (int i = 0; i < count; i++)
        {
            int d = i % 10;
            labels[i] = (byte)d;
            for (int p = 0; p < 784; p++)
                pixels[i * 784 + p] = (byte)(p / 28 / 2 == d ? 200 + rng.NextInt(56) : rng.NextInt(40));
        }
        return new MnistDataset(pixels, labels, 784);
    }
}
