using LoRA.Managed.Autograd;
using LoRA.Managed.Nn;

using LoRA.Managed.Text;

namespace LoRA.Managed.Training;

/// <summary>Mean next-token cross-entropy of a causal language model (<see cref="ICausalLanguageModel"/>) over packed
/// windows, for validation.</summary>
public static class LanguageModelLoss
{
    /// <summary>
    /// The token-weighted mean loss (nats per token) over the first <paramref name="maxWindows"/> windows (all when 0),
    /// in evaluation mode and without recording gradients; the model's training mode is restored afterwards.
    /// </summary>
    /// <exception cref="ArgumentException">There are no windows, or the windows are longer than the model's block
    /// size.</exception>
    public static double Mean(ICausalLanguageModel model, PackedSequences windows, int batchSize = 32,
        int maxWindows = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        var module = (Module)model;
        ArgumentNullException.ThrowIfNull(windows);
        int count = maxWindows > 0 ? Math.Min(maxWindows, windows.Count) : windows.Count;
        if (count == 0)
            throw new ArgumentException("LanguageModelLoss: no windows to evaluate (is the text shorter than " +
                "max_seq_length + 1?).");
        bool wasTraining = module.Training;
        module.Eval();
        try
        {
            using var _ = Tape.NoGrad();
            int t = windows.MaxSeqLength;
            double total = 0;
            for (int start = 0; start < count; start += batchSize)
            {
                int b = Math.Min(batchSize, count - start);
                var inputs = new int[b * t];
                var targets = new int[b * t];
                for (int r = 0; r < b; r++)
                {
                    windows.Inputs(start + r).CopyTo(inputs.AsSpan(r * t));
                    windows.Targets(start + r).CopyTo(targets.AsSpan(r * t));
                }
                total += model.NextTokenLoss(inputs, targets, b, t) * b;
            }
            return total / count;
        }
        finally
        {
            module.Train(wasTraining);
        }
    }
}
