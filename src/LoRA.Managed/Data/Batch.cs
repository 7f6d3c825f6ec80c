using LoRA.Managed.Tensors;

namespace LoRA.Managed.Data;

/// <summary>
/// One mini-batch: images as a (B, pixels) float tensor and their labels. A <see cref="DataLoader"/>
/// reuses the same batch objects across steps and epochs, so a batch is valid until the next one is produced.
/// </summary>
public sealed class Batch
{
    internal Batch(int size, int imageSize)
    {
        Images = new Tensor(size, imageSize);
        Labels = new int[size];
        Indices = new int[size];
    }

    /// <summary>Number of samples (the last batch of an epoch may be smaller than the loader's batch size).</summary>
    public int Size => Labels.Length;

    /// <summary>The images, (B, pixels), scaled as the dataset says.</summary>
    public Tensor Images { get; }

    /// <summary>The labels, one per image.</summary>
    public int[] Labels { get; }

    /// <summary>Which dataset samples this batch holds, in batch order.</summary>
    public int[] Indices { get; }
}
