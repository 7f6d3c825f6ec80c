using LoRA.Managed.Tensors;

namespace LoRA.Managed.Nn;

/// <summary>
/// What a language model's token lookup needs: ids in, vectors out, and the table itself (which a tied head
/// reuses). <see cref="Embedding"/> is one; an adapter that wraps an embedding (LoRA's <c>lora.Embedding</c>) is
/// another, so a model calls whichever module sits at its token-embedding name.
/// </summary>
public interface ITokenEmbedding
{
    /// <summary>The underlying table (the wrapped one for an adapter); a tied head multiplies by its weight.</summary>
    Embedding Table { get; }

    /// <summary>Looks up <paramref name="ids"/>, which fill <paramref name="shape"/>; returns <c>shape +
    /// [embedding_dim]</c>.</summary>
    Tensor Forward(ReadOnlySpan<int> ids, params int[] shape);
}
