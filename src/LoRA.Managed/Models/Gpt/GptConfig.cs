using LoRA.Managed.Nn;

namespace LoRA.Managed.Models;

/// <summary>
/// The size of a <see cref="GptModel"/>, in the spirit of nanoGPT's <c>GPTConfig</c>. The defaults are a
/// character-level model small enough to pre-train on two CPU cores in minutes.
/// </summary>
public sealed record GptConfig
{
    /// <summary>Distinct tokens (for a character model, the characters of the corpus plus the unknown symbol). Default
    /// 96.</summary>
    public int VocabSize { get; init; } = 96;

    /// <summary>Longest context (max_seq_length): the number of learned positions. Default 64.</summary>
    public int BlockSize { get; init; } = 64;

    /// <summary>Transformer blocks. Default 2.</summary>
    public int Layers { get; init; } = 2;

    /// <summary>Attention heads per block; must divide <see cref="Embed"/>. Default 4.</summary>
    public int Heads { get; init; } = 4;

    /// <summary>Width of the residual stream (n_embd). Default 64.</summary>
    public int Embed { get; init; } = 64;

    /// <summary>Dropout probability on embeddings, attention weights and residual branches (0 = none, nanoGPT's
    /// default). Default 0.</summary>
    public float Dropout { get; init; }

    /// <summary>Throws unless every size is positive, the heads divide the width and dropout is in [0, 1).</summary>
    /// <exception cref="ArgumentException">The message names the offending field.</exception>
    public void Validate()
    {
        if (VocabSize <= 0) throw new ArgumentException($"GptConfig.VocabSize must be positive, got {VocabSize}.");
        if (BlockSize <= 0) throw new ArgumentException($"GptConfig.BlockSize must be positive, got {BlockSize}.");
        if (Layers <= 0) throw new ArgumentException($"GptConfig.Layers must be positive, got {Layers}.");
        if (Heads <= 0 || Embed <= 0 || Embed % Heads != 0)
            throw new ArgumentException($"GptConfig: Embed ({Embed}) must be a positive multiple of Heads ({Heads}).");
        if (!(Dropout >= 0f && Dropout < 1f))
            throw new ArgumentException($"GptConfig.Dropout must be in [0, 1), got {Dropout}.");
    }
}
