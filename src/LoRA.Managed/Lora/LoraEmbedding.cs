using LoRA.Managed.Autograd;
using LoRA.Managed.Autograd.Ops;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

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
/// <see cref="BaseLayer"/>'s weight, as in PEFT: the adapter changes the lookup only, until <see cref="Merge"/>
/// writes W + ΔW into that shared table, which the head then sees too.
/// </remarks>
public sealed class LoraEmbedding : Module, ITokenEmbedding
{
    private readonly Dictionary<string, LoraConfig> _configs = new(StringComparer.Ordinal);
    // The adapters' names in the order they were added (a Dictionary reuses a removed entry's slot).
    private readonly List<string> _order = [];
    private Tensor? _unmergedWeight;

    /// <summary>Wraps <paramref name="baseLayer"/> and freezes it.</summary>
    public LoraEmbedding(Embedding baseLayer, string moduleName = "")
    {
        ArgumentNullException.ThrowIfNull(baseLayer);
        ModuleName = moduleName ?? "";
        BaseLayer = RegisterModule("base_layer", baseLayer);
        LoraEmbeddingA = RegisterModule("lora_embedding_A", new AdapterParameterDict());
        LoraEmbeddingB = RegisterModule("lora_embedding_B", new AdapterParameterDict());
        baseLayer.RequiresGrad(false);
    }

    /// <summary>The wrapped table (the merged one after <see cref="Merge"/>).</summary>
    public Embedding BaseLayer { get; }

    /// <inheritdoc />
    public Embedding Table => BaseLayer;

    /// <summary>The A factors (r×V) by adapter name.</summary>
    public AdapterParameterDict LoraEmbeddingA { get; }

    /// <summary>The B factors (D×r) by adapter name.</summary>
    public AdapterParameterDict LoraEmbeddingB { get; }

    /// <summary>The module's full name in its model ("" when built standalone).</summary>
    public string ModuleName { get; }

    /// <summary>The adapters in the order they were added.</summary>
    public IReadOnlyList<string> Adapters => _order;

    /// <summary>The adapter the forward uses, or null.</summary>
    public string? ActiveAdapter { get; private set; }

    /// <summary>When true the forward looks up the base table alone (PEFT's <c>disable_adapter</c>).</summary>
    public bool AdaptersDisabled { get; set; }

    /// <summary>The adapter folded into the table, or null.</summary>
    public string? MergedAdapter { get; private set; }

    /// <summary>True while an adapter is merged into the table.</summary>
    public bool IsMerged => MergedAdapter is not null;

    /// <summary>
    /// Adds adapter <paramref name="name"/>: A (r×V) zeros and B (D×r) normal(0, 1), as PEFT's
    /// <c>reset_lora_parameters</c> does for embeddings, so an adapter starts with no effect. The first adapter added
    /// becomes active.
    /// </summary>
    /// <exception cref="ArgumentException">The name is taken, the rank does not fit, or the config asks for DoRA or an
    /// SVD initialisation, which embeddings do not take here.</exception>
    /// <exception cref="InvalidOperationException">An adapter is merged.</exception>
    public void AddAdapter(string name, LoraConfig config, TorchGenerator generator)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(generator);
        if (IsMerged)
            throw new InvalidOperationException(
                $"{Who}: cannot add adapter '{name}' while '{MergedAdapter}' is merged; call Unmerge first.");
        if (_configs.ContainsKey(name)) throw new ArgumentException($"{Who}: adapter '{name}' already exists.");
        int vocab = BaseLayer.NumEmbeddings, dim = BaseLayer.EmbeddingDim, r = config.Rank;
        if (r < 1 || r > Math.Min(vocab, dim))
            throw new ArgumentException(
                $"{Who}: rank {r} must be in 1..{Math.Min(vocab, dim)} for an Embedding of {vocab}×{dim}.");
        if (config.UseDora)
            throw new ArgumentException($"{Who}: DoRA on an Embedding is not supported; target Linear layers only.");
        if (config.Init.ReadsBase())
            throw new ArgumentException(
                $"{Who}: {config.Init} initialisation is not supported on an Embedding; use Default.");
        var a = new Parameter(r, vocab);
        var b = new Parameter(dim, r);
        // PEFT draws randn A and randn B, then zeros_(A) and normal_(B): the same number of draws in that order
        // (TorchGenerator's normal draws are not bit-identical to torch's, so the values differ from PEFT's).
        generator.FillNormal(a.Data);
        generator.FillNormal(b.Data);
        a.Data.Clear();
        generator.FillNormal(b.Data);
        LoraEmbeddingA.Add(name, a);
        LoraEmbeddingB.Add(name, b);
        _configs.Add(name, config);
        _order.Add(name);
        ActiveAdapter ??= name;
    }

    /// <summary>Makes <paramref name="name"/> the adapter the forward uses; null leaves none active.</summary>
    /// <exception cref="KeyNotFoundException">No such adapter.</exception>
    /// <exception cref="InvalidOperationException">Another adapter is merged.</exception>
    public void SetActiveAdapter(string? name)
    {
        if (name is not null && !_configs.ContainsKey(name))
            throw new KeyNotFoundException(
                $"{Who}: no adapter '{name}'; adapters: {string.Join(", ", _configs.Keys)}.");
        if (IsMerged && MergedAdapter != name)
            throw new InvalidOperationException(
                $"{Who}: adapter '{MergedAdapter}' is merged; call Unmerge before activating '{name ?? "none"}'.");
        ActiveAdapter = name;
    }

    /// <summary>Removes adapter <paramref name="name"/> and its factors (PEFT's layer <c>delete_adapter</c>); when it
    /// was active, no adapter is (the model picks the next).</summary>
    /// <exception cref="KeyNotFoundException">No such adapter.</exception>
    /// <exception cref="InvalidOperationException">It is merged (unmerge first).</exception>
    public void DeleteAdapter(string name)
    {
        if (!_configs.ContainsKey(name)) throw new KeyNotFoundException($"{Who}: no adapter '{name}'.");
        if (MergedAdapter == name)
            throw new InvalidOperationException($"{Who}: adapter '{name}' is merged; unmerge it first.");
        LoraEmbeddingA.Remove(name);
        LoraEmbeddingB.Remove(name);
        _configs.Remove(name);
        _order.Remove(name);
        if (ActiveAdapter == name) ActiveAdapter = null;
    }

    /// <summary>The configuration adapter <paramref name="name"/> was added with.</summary>
    public LoraConfig AdapterConfig(string name) => _configs.TryGetValue(name, out var c)
        ? c : throw new KeyNotFoundException($"LoraEmbedding '{ModuleName}': no adapter '{name}'.");

    /// <summary>The scale of adapter <paramref name="name"/>.</summary>
    public double Scale(string name) => AdapterConfig(name).Scale;

    /// <summary>ΔW = scale·(B·A)ᵀ of adapter <paramref name="name"/>, (V, D), computed in double then rounded
    /// once.</summary>
    public Tensor DeltaWeight(string name)
    {
        var delta = new Tensor(BaseLayer.NumEmbeddings, BaseLayer.EmbeddingDim);
        LowRank.CopyTo(DeltaWeightDouble(name), delta.Data);
        return delta;
    }

    /// <summary>Looks up <paramref name="ids"/>: <c>W[x] + scale·(Aᵀ[x]·Bᵀ)</c> for the active adapter.</summary>
    public Tensor Forward(ReadOnlySpan<int> ids, params int[] shape)
    {
        if (AdaptersDisabled)
            return _unmergedWeight is { } u ? Functional.Embedding(u, ids, shape) : BaseLayer.Forward(ids, shape);
        Tensor y = BaseLayer.Forward(ids, shape);
        if (IsMerged || ActiveAdapter is null) return y;
        string name = ActiveAdapter;
        // y + scale·(Aᵀ[x])·Bᵀ, added in place into the looked-up rows (the lookup's backward never reads them).
        Tensor low = EmbeddingColumnsOp.Apply(LoraEmbeddingA[name], ids, shape);   // (…, r)
        return LowRankAddOp.Apply(y, low, LoraEmbeddingB[name], (float)_configs[name].Scale);
    }

    /// <summary>Looks up ids stored as whole-number floats (see <see cref="Embedding.Forward(Tensor)"/>).</summary>
    public override Tensor Forward(Tensor input) =>
        Forward(Embedding.IdsFromFloats(input, "LoraEmbedding"), input.Shape);

    /// <summary>
    /// Folds the active adapter into the table, <c>W ← W + scale·(B·A)ᵀ</c> (PEFT's <c>merge</c>), formed in double
    /// and rounded once; the previous table is kept so <see cref="Unmerge"/> restores it bit for bit. A tied head
    /// shares the table, so it sees the merged weight, as in PEFT.
    /// </summary>
    /// <exception cref="InvalidOperationException">Already merged, there is no adapter, or the table is stored
    /// quantised.</exception>
    public void Merge()
    {
        if (IsMerged) throw new InvalidOperationException($"{Who}: adapter '{MergedAdapter}' is already merged.");
        if (ActiveAdapter is null) throw new InvalidOperationException($"{Who}: there is no adapter to merge.");
        if (BaseLayer.IsQuantized)
            throw new InvalidOperationException($"{Who}: the table is stored {BaseLayer.QuantizedWeight!.DType}; "
                + "merging into a quantised table would round the adapter away. Load the base with --embedding-dtype "
                + "f32 to merge.");
        Tensor w = BaseLayer.Weight;
        _unmergedWeight = w.Clone();
        LowRank.CopyTo(LowRank.ToMatrix(w) + DeltaWeightDouble(ActiveAdapter), w.Data);
        MergedAdapter = ActiveAdapter;
    }

    /// <summary>Restores the table saved by <see cref="Merge"/>; exact.</summary>
    /// <exception cref="InvalidOperationException">Nothing is merged.</exception>
    public void Unmerge()
    {
        if (_unmergedWeight is null) throw new InvalidOperationException($"{Who}: nothing is merged.");
        _unmergedWeight.Data.CopyTo(BaseLayer.Weight.Data);
        _unmergedWeight = null;
        MergedAdapter = null;
    }

    /// <summary>Merges the active adapter (if not yet merged) and returns the base table, which now carries W +
    /// ΔW.</summary>
    public Embedding MergeAndUnload()
    {
        if (!IsMerged && ActiveAdapter is not null) Merge();
        _unmergedWeight = null;
        return BaseLayer;
    }

    private MathNet.Numerics.LinearAlgebra.Matrix<double> DeltaWeightDouble(string name) =>
        (Scale(name) * (LowRank.ToMatrix(LoraEmbeddingB[name]) * LowRank.ToMatrix(LoraEmbeddingA[name]))).Transpose();

    /// <inheritdoc />
    public override string ToString() =>
        $"LoraEmbedding({BaseLayer}, adapters=[{string.Join(", ", _configs.Select(c => $"{c.Key}: r={c.Value.Rank}, " +
            $"scale={c.Value.Scale}"))}], active={ActiveAdapter ?? "none"})";

    private string Who => $"LoraEmbedding '{ModuleName}'";
}
