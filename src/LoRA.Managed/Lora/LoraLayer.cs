using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using MathNet.Numerics.LinearAlgebra;

namespace LoRA.Managed.Lora;

/// <summary>
/// What every adapted layer shares, PEFT's <c>LoraLayer</c>: a frozen base layer (child <c>base_layer</c>) carrying
/// adapters by name with the configurations they were added with, the one active adapter, merging it into the base
/// weight and restoring that weight exactly, and switching adapters off. <see cref="LoraLinear"/> and
/// <see cref="LoraEmbedding"/> add what differs: the factors and their initialisation, the forward, ΔW and the
/// merge.
/// </summary>
public abstract class LoraLayer : Module
{
    private readonly Dictionary<string, LoraConfig> _configs = new(StringComparer.Ordinal);
    // The adapters' names in the order they were added (a Dictionary reuses a removed entry's slot).
    private readonly List<string> _order = [];

    /// <summary>Registers <paramref name="baseLayer"/> as <c>base_layer</c> and freezes it.</summary>
    private protected LoraLayer(Module baseLayer, string moduleName)
    {
        ArgumentNullException.ThrowIfNull(baseLayer);
        ModuleName = moduleName ?? "";
        RegisterModule("base_layer", baseLayer);
        baseLayer.RequiresGrad(false);
    }

    /// <summary>The wrapped layer (its weight is the merged one after <see cref="Merge"/>).</summary>
    public abstract Module BaseLayer { get; }

    /// <summary>The module's full name in its model ("" when built standalone).</summary>
    public string ModuleName { get; }

    /// <summary>The adapters in the order they were added.</summary>
    public IReadOnlyList<string> Adapters => _order;

    /// <summary>The adapter the forward uses (null before the first <see cref="AddAdapter"/>, or when none
    /// is).</summary>
    public string? ActiveAdapter { get; private set; }

    /// <summary>When true, the forward computes the base layer alone (PEFT's <c>disable_adapter</c>).</summary>
    public bool AdaptersDisabled { get; set; }

    /// <summary>The adapter folded into the base weight by <see cref="Merge"/>, or null.</summary>
    public string? MergedAdapter { get; private set; }

    /// <summary>True while an adapter is merged into the base weight.</summary>
    public bool IsMerged => MergedAdapter is not null;

    /// <summary>The base weight as it was before <see cref="Merge"/> (what the forward uses with adapters disabled),
    /// or null when nothing is merged.</summary>
    private protected Tensor? UnmergedWeight { get; private set; }

    /// <summary>The base weight <see cref="Merge"/> writes into.</summary>
    private protected abstract Tensor BaseWeight { get; }

    /// <summary>
    /// Adds adapter <paramref name="name"/> with the rank, α, scaling, dropout and initialisation of
    /// <paramref name="config"/>, drawing random values (initialisation, then dropout masks) from
    /// <paramref name="generator"/>. The first adapter added becomes active.
    /// </summary>
    /// <exception cref="ArgumentException">The name is taken, or the configuration does not fit this layer (the rank,
    /// or an initialisation or DoRA the layer does not take; named).</exception>
    /// <exception cref="InvalidOperationException">An adapter is merged (unmerge first).</exception>
    public void AddAdapter(string name, LoraConfig config, TorchGenerator generator)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(generator);
        if (IsMerged)
            throw new InvalidOperationException(
                $"{Who}: cannot add adapter '{name}' while '{MergedAdapter}' is merged; call Unmerge first.");
        if (_configs.ContainsKey(name)) throw new ArgumentException($"{Who}: adapter '{name}' already exists.");
        CreateAdapter(name, config, generator);
        _configs.Add(name, config);
        _order.Add(name);
        ActiveAdapter ??= name;
    }

    /// <summary>Checks <paramref name="config"/> against the base layer, then creates the weights of adapter
    /// <paramref name="name"/> (a new name; nothing is merged).</summary>
    private protected abstract void CreateAdapter(string name, LoraConfig config, TorchGenerator generator);

    /// <summary>
    /// Makes <paramref name="name"/> the adapter the forward uses (PEFT's <c>set_adapter</c>); null leaves no adapter
    /// active, so the layer computes its base alone (how a model-wide active adapter that this layer does not carry
    /// behaves in PEFT).
    /// </summary>
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

    /// <summary>Removes adapter <paramref name="name"/> and its weights (PEFT's layer <c>delete_adapter</c>); when it
    /// was active, no adapter is (the model picks the next).</summary>
    /// <exception cref="KeyNotFoundException">No such adapter.</exception>
    /// <exception cref="InvalidOperationException">It is merged (unmerge first).</exception>
    public void DeleteAdapter(string name)
    {
        if (!_configs.ContainsKey(name)) throw new KeyNotFoundException($"{Who}: no adapter '{name}'.");
        if (MergedAdapter == name)
            throw new InvalidOperationException($"{Who}: adapter '{name}' is merged; unmerge it first.");
        DeleteWeights(name);
        _configs.Remove(name);
        _order.Remove(name);
        if (ActiveAdapter == name) ActiveAdapter = null;
    }

    /// <summary>Removes every weight (and dropout stream) of adapter <paramref name="name"/>.</summary>
    private protected abstract void DeleteWeights(string name);

    /// <summary>The configuration adapter <paramref name="name"/> was added with.</summary>
    public LoraConfig AdapterConfig(string name) => _configs.TryGetValue(name, out var c)
        ? c : throw new KeyNotFoundException($"{Who}: no adapter '{name}'.");

    /// <summary>The scale of adapter <paramref name="name"/> (α, α/r or α/√r).</summary>
    public double Scale(string name) => AdapterConfig(name).Scale;

    /// <summary>Adapter <paramref name="name"/>'s two factors, A (r×in) and B (out×r), which
    /// <see cref="AdapterCombination"/> reads and writes.</summary>
    internal abstract (Tensor A, Tensor B) Factors(string name);

    /// <summary>Adapter <paramref name="name"/>'s parameters with their names in this layer
    /// (<c>lora_A.&lt;name&gt;.weight</c>, <c>lora_embedding_A.&lt;name&gt;</c>, …): every parameter outside
    /// <c>base_layer</c> whose second name part is the adapter's, as PEFT selects them by name.</summary>
    internal IEnumerable<KeyValuePair<string, Parameter>> NamedAdapterParameters(string name) =>
        NamedParameters().Where(p => p.Key.Split('.') is [not "base_layer", var adapter, ..] && adapter == name);

    /// <summary>ΔW of adapter <paramref name="name"/> (out×in for a Linear whatever its layout, V×D for an
    /// embedding), computed in double then rounded once.</summary>
    public Tensor DeltaWeight(string name)
    {
        var delta = DeltaWeightDouble(name);
        var tensor = new Tensor(delta.RowCount, delta.ColumnCount);
        LowRank.CopyTo(delta, tensor.Data);
        return tensor;
    }

    /// <summary>ΔW = scale·B·A of adapter <paramref name="name"/>, (out, in), in double.</summary>
    private protected virtual Matrix<double> DeltaWeightDouble(string name)
    {
        var (a, b) = Factors(name);
        return Scale(name) * (LowRank.ToMatrix(b) * LowRank.ToMatrix(a));
    }

    /// <summary>
    /// Folds the active adapter into the base weight (PEFT's <c>merge</c>), so the forward is the base layer's alone.
    /// The sum is formed in double and rounded once. The previous weight is kept, so <see cref="Unmerge"/> restores it
    /// bit for bit: subtracting ΔW in float would leave a rounding error of order 2⁻²⁴·|ΔW| in each element instead.
    /// </summary>
    /// <exception cref="InvalidOperationException">Already merged, there is no adapter, or the base cannot take a
    /// merge (a quantised weight).</exception>
    public void Merge()
    {
        if (IsMerged) throw new InvalidOperationException($"{Who}: adapter '{MergedAdapter}' is already merged.");
        if (ActiveAdapter is null) throw new InvalidOperationException($"{Who}: there is no adapter to merge.");
        RequireMergeable();
        Tensor w = BaseWeight;
        UnmergedWeight = w.Clone();
        LowRank.CopyTo(MergedWeight(w, ActiveAdapter), w.Data);
        MergedAdapter = ActiveAdapter;
    }

    /// <summary>Throws when the base weight cannot take a merge; nothing by default.</summary>
    private protected virtual void RequireMergeable() { }

    /// <summary>The base weight <paramref name="weight"/> with adapter <paramref name="name"/> folded in, in its
    /// stored layout, in double.</summary>
    private protected abstract Matrix<double> MergedWeight(Tensor weight, string name);

    /// <summary>Restores the base weight saved by <see cref="Merge"/> (PEFT's <c>unmerge</c>); exact.</summary>
    /// <exception cref="InvalidOperationException">Nothing is merged.</exception>
    public void Unmerge()
    {
        if (UnmergedWeight is null) throw new InvalidOperationException($"{Who}: nothing is merged.");
        UnmergedWeight.Data.CopyTo(BaseWeight.Data);
        UnmergedWeight = null;
        MergedAdapter = null;
    }

    /// <summary>Merges the active adapter (if not yet merged) and returns the base layer, which now carries W +
    /// ΔW.</summary>
    public Module MergeAndUnload()
    {
        if (!IsMerged && ActiveAdapter is not null) Merge();
        UnmergedWeight = null;
        return BaseLayer;
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"{GetType().Name}({BaseLayer}, adapters=[{string.Join(", ", _configs.Select(c => $"{c.Key}: " +
            $"r={c.Value.Rank}, scale={c.Value.Scale}"))}], active={ActiveAdapter ?? "none"})";

    /// <summary>The layer's kind and name, the start of its error messages.</summary>
    private protected string Who => $"{GetType().Name} '{ModuleName}'";
}
