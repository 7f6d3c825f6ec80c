using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Models;

/// <summary>
/// Autoregressive generation with a key/value cache: the prompt is run once (prefill), then each new token is one
/// cached forward of a single position, its logits turned into the next token by a <see cref="TokenSampler"/>.
/// Generation stops after <see cref="GenerationSettings.MaxNewTokens"/>, at an EOS id (which is returned), or at the
/// model's maximum context. Each step runs in a <see cref="TensorArena"/>, so after the first it allocates nothing.
/// </summary>
public static class LmGeneration
{
    /// <summary>The new tokens after <paramref name="promptIds"/>; <paramref name="onToken"/> sees each as it is
    /// chosen.</summary>
    /// <exception cref="ArgumentException">The prompt is empty or too long for the model, or a setting is out of
    /// range.</exception>
    public static int[] Generate(CausalLm model, ReadOnlySpan<int> promptIds, GenerationSettings settings,
        Action<int>? onToken = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        if (promptIds.Length == 0) throw new ArgumentException("Generate: the prompt has no tokens.");
        int max = model.Config.MaxContext;
        if (promptIds.Length >= max)
            throw new ArgumentException($"Generate: the prompt has {promptIds.Length} tokens; the model's " +
                $"maximum context is {max}.");
        var eos = new HashSet<int>(settings.EosTokenIds ?? model.EosTokenIds);
        var sampler = new TokenSampler(settings);
        int steps = Math.Min(settings.MaxNewTokens, max - promptIds.Length);
        var output = new List<int>(steps);
        if (steps == 0) return [];
        KvCache cache = model.NewCache(promptIds.Length + steps);
        var arena = new TensorArena();
        int[] one = new int[1];
        bool wasTraining = model.Training;
        model.Eval();
        try
        {
            // The prompt in chunks (as LmScoring), only the last chunk's last row feeding the sampler.
            int next = 0;
            for (int c0 = 0; c0 < promptIds.Length; c0 += LmScoring.ChunkTokens)
            {
                int rows = Math.Min(LmScoring.ChunkTokens, promptIds.Length - c0);
                using (arena.Activate())
                using (Tape.NoGrad())
                {
                    Tensor hidden = model.ForwardCached(promptIds.Slice(c0, rows), cache);
                    if (c0 + rows == promptIds.Length) next = Pick(model, hidden, sampler);
                }
            }
            while (true)
            {
                output.Add(next);
                onToken?.Invoke(next);
                if (eos.Contains(next) || output.Count == steps) break;
                one[0] = next;
                using (arena.Activate())
                using (Tape.NoGrad())
                    next = Pick(model, model.ForwardCached(one, cache), sampler);
            }
        }
        finally
        {
            model.Train(wasTraining);
        }
        return output.ToArray();
    }

    /// <summary>Applies the head to the last hidden row only and samples from its logits.</summary>
    private static int Pick(CausalLm model, Tensor hidden, TokenSampler sampler)
    {
        int c = model.Config.HiddenSize, n = hidden.Shape[0];
        Tensor last = Tape.NewTensor(LastRowShape(c));
        hidden.Data.Slice((n - 1) * c, c).CopyTo(last.Data);
        return sampler.Next(model.Head(last).Data);
    }

    [ThreadStatic] private static int[]? t_lastRowShape;

    private static int[] LastRowShape(int c) => t_lastRowShape is { } s && s[1] == c ? s : t_lastRowShape = [1, c];
}
