using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Nn;

/// <summary>
/// A lookup table of learned vectors, as <c>torch.nn.Embedding</c>: <c>weight</c> is (num_embeddings, embedding_dim),
/// initialised N(0, 1) as PyTorch does. Ids outside the table raise an error naming the id and its position.
/// </summary>
public sealed class Embedding : Module, ITokenEmbedding
{
    /// <summary>Creates a table drawn N(0, 1) from <paramref name="generator"/>.</summary>
    public Embedding(int numEmbeddings, int embeddingDim, TorchGenerator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        if (numEmbeddings <= 0 || embeddingDim <= 0)
            throw new ArgumentOutOfRangeException(nameof(numEmbeddings), $"Embedding: sizes must be positive, got {numEmbeddings}×{embeddingDim}.");
        NumEmbeddings = numEmbeddings;
        EmbeddingDim = embeddingDim;
        Weight = RegisterParameter("weight", new Parameter(numEmbeddings, embeddingDim));
        generator.FillNormal(Weight.Data, 0f, 1f);
    }

    private Embedding(int numEmbeddings, int embeddingDim)
    {
        if (numEmbeddings <= 0 || embeddingDim <= 0)
            throw new ArgumentOutOfRangeException(nameof(numEmbeddings), $"Embedding: sizes must be positive, got {numEmbeddings}×{embeddingDim}.");
        NumEmbeddings = numEmbeddings;
        EmbeddingDim = embeddingDim;
        Weight = RegisterParameter("weight", new Parameter(numEmbeddings, embeddingDim));
    }

    /// <summary>A table of zeros, for weights loaded from a file.</summary>
    public static Embedding Empty(int numEmbeddings, int embeddingDim) => new(numEmbeddings, embeddingDim);

    /// <summary>Rows of the table (the vocabulary size for token embeddings).</summary>
    public int NumEmbeddings { get; }

    /// <summary>Length of each vector.</summary>
    public int EmbeddingDim { get; }

    /// <summary>The table, (num_embeddings, embedding_dim).</summary>
    public Parameter Weight { get; }

    /// <summary>This table itself.</summary>
    public Embedding Table => this;

    /// <summary>Looks up <paramref name="ids"/>, which fill <paramref name="shape"/>; returns <c>shape +
    /// [embedding_dim]</c>.</summary>
    public Tensor Forward(ReadOnlySpan<int> ids, params int[] shape) => Functional.Embedding(Weight, ids, shape);

    /// <summary>
    /// Looks up ids stored as whole-number floats in <paramref name="input"/> (PyTorch would pass a LongTensor);
    /// prefer <see cref="Forward(ReadOnlySpan{int}, int[])"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A value is not a whole number.</exception>
    public override Tensor Forward(Tensor input) => Forward(IdsFromFloats(input, "Embedding"), input.Shape);

    /// <summary>Converts ids stored as floats into ints, rejecting anything that is not a whole number.</summary>
    internal static int[] IdsFromFloats(Tensor input, string who)
    {
        ArgumentNullException.ThrowIfNull(input);
        var ids = new int[input.Count];
        for (int i = 0; i < ids.Length; i++)
        {
            float v = input[i];
            if (!(MathF.Round(v) == v) || MathF.Abs(v) > 16_777_216f)
                throw new ArgumentException($"{who}: element {i} of the ids {Shapes.Format(input.Shape)} is {v}, not a whole number.");
            ids[i] = (int)v;
        }
        return ids;
    }

    /// <inheritdoc />
    public override string ToString() => $"Embedding({NumEmbeddings}, {EmbeddingDim})";
}
