namespace LoRA.Managed.Models;

/// <summary>
/// How <see cref="LmGeneration"/> picks tokens, as Hugging Face's <c>generate</c>: temperature 0 is greedy
/// (<c>do_sample=False</c>); otherwise the logits are divided by the temperature, cut to the top-k, then to the
/// smallest set whose probability reaches top-p, and one token is drawn with the seed's generator.
/// </summary>
public sealed record GenerationSettings
{
    /// <summary>Tokens to generate at most.</summary>
    public int MaxNewTokens { get; init; } = 32;

    /// <summary>0 for greedy decoding; otherwise the softmax temperature.</summary>
    public float Temperature { get; init; }

    /// <summary>Keep the k most likely tokens (0: all).</summary>
    public int TopK { get; init; }

    /// <summary>Keep the smallest set of most likely tokens whose probability reaches p (1: all).</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Seed of the sampling generator.</summary>
    public ulong Seed { get; init; }

    /// <summary>Ids that stop generation (null: the model's <see cref="CausalLm.EosTokenIds"/>); the EOS token is kept
    /// in the output.</summary>
    public IReadOnlyList<int>? EosTokenIds { get; init; }

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names it.</exception>
    public void Validate()
    {
        if (MaxNewTokens < 0)
            throw new ArgumentException($"GenerationSettings: MaxNewTokens must be ≥ 0, got {MaxNewTokens}.");
        if (!(Temperature >= 0 && float.IsFinite(Temperature)))
            throw new ArgumentException("GenerationSettings: Temperature must be a finite number ≥ " +
                $"0, got {Temperature}.");
        if (TopK < 0) throw new ArgumentException($"GenerationSettings: TopK must be ≥ 0, got {TopK}.");
        if (!(TopP > 0 && TopP <= 1))
            throw new ArgumentException($"GenerationSettings: TopP must be in (0, 1], got {TopP}.");
    }
}
