using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Nn;

/// <summary>
/// A lookup table of learned vectors, as <c>torch.nn.Embedding</c>: <c>weight</c> is (num_embeddings, embedding_dim),
/// initialised N(0, 1) as PyTorch does. Ids outside the table raise an error naming the id and its position.
/// </summary>
/// <remarks>
/// A frozen table can be stored in a <see cref="BaseDType"/> (<see cref="QuantizeWeight(BaseDType)"/>, as a
/// QLoRA base stores its embeddings in the model's bf16): a lookup then expands only the rows it picks, and a tied head
/// multiplies by <see cref="QuantizedWeight"/> (<c>[num_embeddings, embedding_dim]</c>, the head's <c>[out, in]</c>).
/// A quantised table gets no gradient: it is no longer a parameter, and LoRA's <c>lora.Embedding</c> adapts it.
/// </remarks>
public sealed class Embedding : Module, ITokenEmbedding, IQuantizableWeight
{
    /// <summary>Creates a table drawn N(0, 1) from <paramref name="generator"/>.</summary>
    public Embedding(int numEmbeddings, int embeddingDim, TorchGenerator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        if (numEmbeddings <= 0 || embeddingDim <= 0)
            throw new ArgumentOutOfRangeException(nameof(numEmbeddings),
                $"Embedding: sizes must be positive, got {numEmbeddings}×{embeddingDim}.");
        NumEmbeddings = numEmbeddings;
        EmbeddingDim = embeddingDim;
        Weight = RegisterParameter("weight", new Parameter(numEmbeddings, embeddingDim));
        generator.FillNormal(Weight.Data, 0f, 1f);
    }

    private Embedding(int numEmbeddings, int embeddingDim)
    {
        if (numEmbeddings <= 0 || embeddingDim <= 0)
            throw new ArgumentOutOfRangeException(nameof(numEmbeddings),
                $"Embedding: sizes must be positive, got {numEmbeddings}×{embeddingDim}.");
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

    /// <summary>The table, (num_embeddings, embedding_dim); an empty tensor once
    /// <see cref="QuantizeWeight(BaseDType)"/> moved it into <see cref="QuantizedWeight"/>.</summary>
    public Parameter Weight { get; private set; }

    /// <summary>The frozen table in quantised storage, <c>[num_embeddings, embedding_dim]</c>, or null while
    /// <see cref="Weight"/> holds it in float32.</summary>
    public QuantizedMatrix? QuantizedWeight { get; private set; }

    /// <summary>True once the table is stored quantised (frozen, no longer a parameter).</summary>
    public bool IsQuantized => QuantizedWeight is not null;

    /// <summary>
    /// Moves the table into <paramref name="dtype"/> storage: the float32 parameter leaves the module's
    /// <c>state_dict</c> and <see cref="Weight"/> becomes empty. Irreversible.
    /// </summary>
    /// <exception cref="InvalidOperationException">Already quantised.</exception>
    public void QuantizeWeight(BaseDType dtype) => QuantizeWeight(dtype, Weight.Data);

    /// <inheritdoc />
    public void QuantizeWeight(BaseDType dtype, ReadOnlySpan<float> weight)
    {
        CheckQuantizable();
        if (weight.Length != Weight.Count)
            throw new ArgumentException($"{this}: {weight.Length} values for a table of {Weight.Count}.");
        Install(QuantizedMatrix.Quantize(weight, NumEmbeddings, EmbeddingDim, dtype));
    }

    /// <inheritdoc />
    public (int Rows, int Columns) QuantizedShape => (NumEmbeddings, EmbeddingDim);

    /// <inheritdoc />
    public void UseQuantizedWeight(QuantizedMatrix weight)
    {
        ArgumentNullException.ThrowIfNull(weight);
        CheckQuantizable();
        if ((weight.Rows, weight.Columns) != QuantizedShape)
            throw new ArgumentException($"{this}: a quantised table of [{weight.Rows}, {weight.Columns}] for "
                + $"[{NumEmbeddings}, {EmbeddingDim}].");
        Install(weight);
    }

    private void CheckQuantizable()
    {
        if (IsQuantized)
            throw new InvalidOperationException($"{this}: the table is already quantised ({QuantizedWeight!.DType}).");
    }

    private void Install(QuantizedMatrix weight)
    {
        QuantizedWeight = weight;
        RemoveParameter("weight");
        Weight = new Parameter(0) { RequiresGrad = false };
    }

    /// <summary>This table itself.</summary>
    public Embedding Table => this;

    /// <summary>Looks up <paramref name="ids"/>, which fill <paramref name="shape"/>; returns <c>shape +
    /// [embedding_dim]</c>.</summary>
    public Tensor Forward(ReadOnlySpan<int> ids, params int[] shape) => QuantizedWeight is { } q
        ? Functional.QuantizedEmbedding(q, ids, shape)
        : Functional.Embedding(Weight, ids, shape);

    /// <summary>
    /// The tied language-model head, <c>hidden·Wᵀ</c> (…, C) → (…, V), over the float32 or the quantised table
    /// (GPT-2's head, and Llama's with <c>tie_word_embeddings</c>).
    /// </summary>
    public Tensor AsHead(Tensor hidden) => QuantizedWeight is { } q
        ? Functional.QuantizedLinear(hidden, q)
        : Functional.Linear(hidden, Weight);

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
                throw new ArgumentException($"{who}: element {i} of the ids {Shapes.Format(input.Shape)} is " +
                    $"{v}, not a whole number.");
            ids[i] = (int)v;
        }
        return ids;
    }

    /// <inheritdoc />
    public override string ToString() => IsQuantized
        ? $"Embedding{QuantizedWeight!.DType}({NumEmbeddings}, {EmbeddingDim})"
        : $"Embedding({NumEmbeddings}, {EmbeddingDim})";
}
