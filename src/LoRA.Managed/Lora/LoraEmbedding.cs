using LoRA.Managed.Autograd;
using LoRA.Managed.Autograd.Ops;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using MathNet.Numerics.LinearAlgebra;

namespace LoRA.Managed.Lora;

/// <summary>
/// A frozen <see cref="Embedding"/> plus low-rank updates, PEFT's <c>lora.Embedding</c>:
/// <c>y = W[x] + scale·(Aᵀ[x]·Bᵀ)</c> with A = <c>lora_embedding_A</c> (r×V) and B = <c>lora_embedding_B</c> (D×r),
/// so <c>ΔW = scale·(B·A)ᵀ</c> (V×D). As in PEFT, A starts at zero and B normal(0, 1), and there is no dropout (PEFT's
/// embedding forward never applies <c>lora_dropout</c>).
/// </summary>
/// <remarks>
/// Children are named as PEFT's: <c>base_layer</c> and the parameter dictionaries <c>lora_embedding_A</c> /
/// <c>lora_embedding_B</c>, so the parameters are <c>X.lora_embedding_A.&lt;adapter&gt;</c> (no <c>.weight</c>;
/// the file key is <c>base_model.model.X.lora_embedding_A</c>). A tied LM head multiplies by
/// <see cref="BaseLayer"/>'s weight, as in PEFT: the adapter changes the lookup only, until
/// <see cref="LoraLayer.Merge"/> writes W + ΔW into that shared table, which the head then sees too.
/// </remarks>
public sealed class LoraEmbedding : LoraLayer, ITokenEmbedding
{
    /// <summary>Wraps <paramref name="baseLayer"/> and freezes it.</summary>
    public LoraEmbedding(Embedding baseLayer, string moduleName = "") : base(baseLayer, moduleName)
    {
        BaseLayer = baseLayer;
        LoraEmbeddingA = RegisterModule("lora_embedding_A", new AdapterDict<Parameter>());
        LoraEmbeddingB = RegisterModule("lora_embedding_B", new AdapterDict<Parameter>());
    }

    /// <summary>The wrapped table (the merged one after <see cref="LoraLayer.Merge"/>).</summary>
    public override Embedding BaseLayer { get; }

    /// <inheritdoc />
    public Embedding Table => BaseLayer;

    /// <summary>The A factors (r×V) by adapter name.</summary>
    public AdapterDict<Parameter> LoraEmbeddingA { get; }

    /// <summary>The B factors (D×r) by adapter name.</summary>
    public AdapterDict<Parameter> LoraEmbeddingB { get; }

    private protected override Tensor BaseWeight => BaseLayer.Weight;

    /// <summary>
    /// Checks that an embedding adapter with <paramref name="config"/> fits <paramref name="table"/>: the rank within
    /// the table, no DoRA, no initialisation that reads the base. <see cref="LoraLayer.AddAdapter"/> and
    /// <see cref="LoraModel.Validate"/> (before the model changes) both ask here; <paramref name="who"/> starts the
    /// message.
    /// </summary>
    /// <exception cref="ArgumentException">It does not fit (named).</exception>
    internal static void CheckFits(Embedding table, LoraConfig config, string who)
    {
        int vocab = table.NumEmbeddings, dim = table.EmbeddingDim, r = config.Rank;
        if (r < 1 || r > Math.Min(vocab, dim))
            throw new ArgumentException(
                $"{who}: rank {r} must be in 1..{Math.Min(vocab, dim)} for an Embedding of {vocab}×{dim}.");
        if (config.UseDora)
            throw new ArgumentException($"{who}: DoRA on an Embedding is not supported; target Linear layers only.");
        if (config.Init.ReadsBase())
            throw new ArgumentException(
                $"{who}: {config.Init} initialisation is not supported on an Embedding; use Default.");
    }

    /// <summary>
    /// A (r×V) zeros and B (D×r) normal(0, 1), as PEFT's <c>reset_lora_parameters</c> does for embeddings, so an
    /// adapter starts with no effect; see <see cref="CheckFits"/> for what is refused.
    /// </summary>
    private protected override void CreateAdapter(string name, LoraConfig config, TorchGenerator generator)
    {
        CheckFits(BaseLayer, config, Who);
        var a = new Parameter(config.Rank, BaseLayer.NumEmbeddings);
        var b = new Parameter(BaseLayer.EmbeddingDim, config.Rank);
        // PEFT draws randn A and randn B, then zeros_(A) and normal_(B): the same number of draws in that order
        // (TorchGenerator's normal draws are not bit-identical to torch's, so the values differ from PEFT's).
        generator.FillNormal(a.Data);
        generator.FillNormal(b.Data);
        a.Data.Clear();
        generator.FillNormal(b.Data);
        LoraEmbeddingA.Add(name, a);
        LoraEmbeddingB.Add(name, b);
    }

    private protected override void DeleteWeights(string name)
    {
        LoraEmbeddingA.Remove(name);
        LoraEmbeddingB.Remove(name);
    }

    internal override (Tensor A, Tensor B) Factors(string name) => (LoraEmbeddingA[name], LoraEmbeddingB[name]);

    /// <summary>ΔW = scale·(B·A)ᵀ, (V, D).</summary>
    private protected override Matrix<double> DeltaWeightDouble(string name) =>
        base.DeltaWeightDouble(name).Transpose();

    /// <summary>Looks up <paramref name="ids"/>: <c>W[x] + scale·(Aᵀ[x]·Bᵀ)</c> for the active adapter.</summary>
    public Tensor Forward(ReadOnlySpan<int> ids, params int[] shape)
    {
        if (AdaptersDisabled)
            return UnmergedWeight is { } u ? Functional.Embedding(u, ids, shape) : BaseLayer.Forward(ids, shape);
        Tensor y = BaseLayer.Forward(ids, shape);
        if (IsMerged || ActiveAdapter is null) return y;
        string name = ActiveAdapter;
        // y + scale·(Aᵀ[x])·Bᵀ, added in place into the looked-up rows (the lookup's backward never reads them).
        // The base lookup has just checked the ids against the same vocabulary (A is r×V).
        Tensor low = EmbeddingColumnsOp.Apply(LoraEmbeddingA[name], ids, shape, idsChecked: true);   // (…, r)
        return LowRankAddOp.Apply(y, low, LoraEmbeddingB[name], (float)Scale(name));
    }

    /// <summary>Looks up ids stored as whole-number floats (see <see cref="Embedding.Forward(Tensor)"/>).</summary>
    public override Tensor Forward(Tensor input) =>
        Forward(Embedding.IdsFromFloats(input, "LoraEmbedding"), input.Shape);

    /// <summary>Refuses a table stored quantised: the merge would round the adapter away.</summary>
    private protected override void RequireMergeable()
    {
        if (BaseLayer.IsQuantized)
            throw new InvalidOperationException($"{Who}: the table is stored {BaseLayer.QuantizedWeight!.DType}; "
                + "merging into a quantised table would round the adapter away. Load the base with --embedding-dtype "
                + "f32 to merge.");
    }

    /// <summary><c>W + scale·(B·A)ᵀ</c>. A tied head shares the table, so it sees the merged weight, as in
    /// PEFT.</summary>
    private protected override Matrix<double> MergedWeight(Tensor weight, string name) =>
        LowRank.ToMatrix(weight) + DeltaWeightDouble(name);
}
