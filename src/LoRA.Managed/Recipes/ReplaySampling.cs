using LoRA.Managed.Data;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Recipes;

/// <summary>
/// Replay (rehearsal) against forgetting: the adapter phase trains on the new task's data plus a small fraction of
/// the old task's, so the loss keeps penalising a drift on the old classes (Robins 1995, "Catastrophic forgetting,
/// rehearsal and pseudorehearsal"; Rolnick et al. 2019, "Experience Replay for Continual Learning").
/// </summary>
public static class ReplaySampling
{
    /// <summary>How many old samples a fraction keeps: ⌊fraction × count⌋.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The fraction is not a number in [0, 1].</exception>
    public static int Count(double fraction, int oldCount)
    {
        if (!(fraction >= 0 && fraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction,
                "replay: the fraction must be in [0, 1].");
        return (int)Math.Floor(fraction * oldCount);
    }

    /// <summary>
    /// The positions in the old set that are replayed: <c>torch.randperm(oldCount, generator)</c> (one 32-bit draw
    /// per position but the last, <see cref="TorchGenerator.RandPerm"/>), its first
    /// <see cref="Count(double, int)"/> entries, sorted ascending. Nothing is drawn when the fraction is 0, so the
    /// generator's later draws (the adapter's init, every epoch's order) are exactly those of a run without replay.
    /// </summary>
    public static int[] Indices(double fraction, int oldCount, TorchGenerator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        int k = Count(fraction, oldCount);
        if (k == 0) return [];
        var perm = new int[oldCount];
        generator.RandPerm(perm);
        int[] chosen = perm[..k];
        Array.Sort(chosen);
        return chosen;
    }

    /// <summary>
    /// The adapter phase's training set: all of <paramref name="newTask"/>, then the replayed samples of
    /// <paramref name="oldTask"/> in their original order (the loader reshuffles every epoch). A fraction of 0
    /// returns <paramref name="newTask"/> itself.
    /// </summary>
    public static MnistDataset Mix(MnistDataset newTask, MnistDataset oldTask, double fraction,
        TorchGenerator generator)
    {
        ArgumentNullException.ThrowIfNull(newTask);
        ArgumentNullException.ThrowIfNull(oldTask);
        int[] indices = Indices(fraction, oldTask.Count, generator);
        return indices.Length == 0 ? newTask : newTask.Concat(oldTask.Select(indices));
    }
}
