using System.Runtime.InteropServices;
using LoRA.Managed.Autograd;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

using LoRA.Managed.Text;

namespace LoRA.Managed.Models;

/// <summary>
/// Autoregressive sampling from a <see cref="GptModel"/>, as nanoGPT's <c>generate</c>: crop the context to the block
/// size, take the last position's logits, divide by the temperature, softmax, draw one token, append, repeat.
/// Temperature 0 is greedy decoding (arg-max, the first on ties). Draws come from the given generator, so a seed
/// gives one text.
/// </summary>
public static class TextGenerator
{
    /// <summary>
    /// The prompt followed by <paramref name="maxNewTokens"/> sampled characters, in eval mode and without recording
    /// gradients (the model's mode is restored). For a LoRA-wrapped model pass its base <see cref="GptModel"/>, whose
    /// layers carry the adapters.
    /// </summary>
    /// <exception cref="ArgumentException">The prompt is empty or the temperature negative or not finite.</exception>
    public static string Sample(GptModel model, CharTokenizer tokenizer, string prompt, int maxNewTokens,
        float temperature, TorchGenerator generator)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(generator);
        ArgumentException.ThrowIfNullOrEmpty(prompt);
        ArgumentOutOfRangeException.ThrowIfNegative(maxNewTokens);
        if (!(temperature >= 0 && float.IsFinite(temperature)))
            throw new ArgumentException("TextGenerator: the temperature must be a finite number ≥ 0, got " +
                $"{temperature}.", nameof(temperature));
        var ids = new List<int>(tokenizer.Encode(prompt));
        int vocab = model.Config.VocabSize;
        var probabilities = new double[vocab];
        bool wasTraining = model.Training;
        model.Eval();
        try
        {
            using var _ = Tape.NoGrad();
            for (int n = 0; n < maxNewTokens; n++)
            {
                int time = Math.Min(ids.Count, model.Config.BlockSize);
                // a view: the model copies what it keeps
                ReadOnlySpan<int> context = CollectionsMarshal.AsSpan(ids)[^time..];
                ReadOnlySpan<float> logits = model.Forward(context, 1, time).Data.Slice((time - 1) * vocab, vocab);
                ids.Add(temperature == 0 ? ArgMax(logits) : Draw(logits, temperature, probabilities, generator));
            }
        }
        finally
        {
            model.Train(wasTraining);
        }
        return tokenizer.Decode(ids.ToArray());
    }

    private static int ArgMax(ReadOnlySpan<float> row)
    {
        int best = 0;
        for (int j = 1; j < row.Length; j++) if (row[j] > row[best]) best = j;
        return best;
    }

    // softmax(logits / T) with the maximum subtracted (stable), then the first index whose cumulative mass exceeds u.
    private static int Draw(ReadOnlySpan<float> logits, float temperature, double[] p, TorchGenerator generator)
    {
        double max = double.NegativeInfinity;
        foreach (float l in logits) max = Math.Max(max, l);
        double sum = 0;
        for (int j = 0; j < logits.Length; j++) sum += p[j] = Math.Exp((logits[j] - max) / temperature);
        double u = generator.NextDouble() * sum, cumulative = 0;
        for (int j = 0; j < logits.Length; j++)
        {
            cumulative += p[j];
            if (u < cumulative) return j;
        }
        return logits.Length - 1;
    }
}
