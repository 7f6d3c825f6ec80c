using LoRA.Managed.Autograd;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Lora;

/// <summary>
/// A frozen <see cref="Linear"/> plus low-rank updates, PEFT's <c>lora.Linear</c>:
/// <c>y = x·Wᵀ + b + scale·((x·Aᵀ)·Bᵀ)</c> with A = <c>lora_A</c> (r×in) and B = <c>lora_B</c> (out×r), so
/// <c>ΔW = scale·B·A</c>. The forward never forms ΔW: the two thin products cost r·(in+out) per row
/// instead of in·out.
/// </summary>
/// <remarks>
/// Children are named as PEFT's in-memory modules: <c>base_layer</c>, <c>lora_A.&lt;adapter&gt;</c>,
/// <c>lora_B.&lt;adapter&gt;</c>; a LoraLinear at <c>layers.5</c> thus has parameters
/// <c>layers.5.base_layer.weight</c>, <c>layers.5.base_layer.bias</c>, <c>layers.5.lora_A.default.weight</c>,
/// <c>layers.5.lora_B.default.weight</c>. Several adapters may live on one base; one is active at a time.
/// A base in GPT-2's Conv1D layout (<see cref="Linear.FanInFanOut"/>, W stored (in, out)) takes the same factors,
/// as PEFT's <c>fan_in_fan_out=True</c>: only the merge transposes ΔW before adding it.
/// </remarks>
public sealed class LoraLinear : Module
{
    private readonly Dictionary<string, LoraConfig> _configs = new(StringComparer.Ordinal);
    // The adapters' names in the order they were added (a Dictionary reuses a removed entry's slot).
    private readonly List<string> _order = [];
    private readonly Dictionary<string, TorchGenerator> _dropoutGenerators = new(StringComparer.Ordinal);
    private Tensor? _unmergedWeight;

    /// <summary>Wraps <paramref name="baseLayer"/> and freezes its weight and bias; add adapters with
    /// <see cref="AddAdapter"/>.</summary>
    /// <param name="baseLayer">The layer to adapt.</param>
    /// <param name="moduleName">Its full name in the model, used in error messages.</param>
    public LoraLinear(Linear baseLayer, string moduleName = "")
    {
        ArgumentNullException.ThrowIfNull(baseLayer);
        ModuleName = moduleName ?? "";
        BaseLayer = RegisterModule("base_layer", baseLayer);
        LoraA = RegisterModule("lora_A", new AdapterDict());
        LoraB = RegisterModule("lora_B", new AdapterDict());
        baseLayer.RequiresGrad(false);
    }

    /// <summary>The wrapped layer (its weight is the residual after PiSSA, the merged weight after
    /// <see cref="Merge"/>).</summary>
    public Linear BaseLayer { get; }

    /// <summary>The A factors (r×in) by adapter name.</summary>
    public AdapterDict LoraA { get; }

    /// <summary>The B factors (out×r) by adapter name.</summary>
    public AdapterDict LoraB { get; }

    /// <summary>DoRA's magnitude vectors by adapter name (child <c>lora_magnitude_vector</c>, registered with the
    /// first DoRA adapter), or null when no adapter of this layer uses DoRA.</summary>
    public DoraMagnitudes? LoraMagnitude { get; private set; }

    /// <summary>True when adapter <paramref name="name"/> uses DoRA on this layer.</summary>
    public bool IsDora(string name) => LoraMagnitude?.Contains(name) ?? false;

    /// <summary>The module's full name in its model ("" when built standalone).</summary>
    public string ModuleName { get; }

    /// <summary>The adapters in the order they were added.</summary>
    public IReadOnlyList<string> Adapters => _order;

    /// <summary>The adapter used by <see cref="Forward"/> (null before the first <see cref="AddAdapter"/>).</summary>
    public string? ActiveAdapter { get; private set; }

    /// <summary>When true, <see cref="Forward"/> computes the base layer alone (PEFT's
    /// <c>disable_adapter</c>).</summary>
    public bool AdaptersDisabled { get; set; }

    /// <summary>The adapter folded into the base weight by <see cref="Merge"/>, or null.</summary>
    public string? MergedAdapter { get; private set; }

    /// <summary>True while an adapter is merged into the base weight.</summary>
    public bool IsMerged => MergedAdapter is not null;

    /// <summary>
    /// Adds adapter <paramref name="name"/> with the rank, α, scaling, dropout and initialisation of
    /// <paramref name="config"/>, drawing random values (initialisation, then dropout masks) from
    /// <paramref name="generator"/>. The first adapter added becomes active.
    /// </summary>
    /// <exception cref="ArgumentException">The name is taken or invalid, or the rank is outside 1..min(in,
    /// out).</exception>
    /// <exception cref="InvalidOperationException">An adapter is merged (unmerge first).</exception>
    public void AddAdapter(string name, LoraConfig config, TorchGenerator generator)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(generator);
        if (IsMerged) throw new InvalidOperationException($"LoraLinear '{ModuleName}': cannot add adapter '{name}' while '{MergedAdapter}' is merged; call Unmerge first.");
        if (_configs.ContainsKey(name)) throw new ArgumentException($"LoraLinear '{ModuleName}': adapter '{name}' already exists.");
        int inF = BaseLayer.InFeatures, outF = BaseLayer.OutFeatures, r = config.Rank;
        if (r < 1 || r > Math.Min(inF, outF))
            throw new ArgumentException($"LoraLinear '{ModuleName}': rank {r} must be in 1..{Math.Min(inF, outF)} for a Linear with weight {Shapes.Format(BaseLayer.Weight.Shape)} (out×in).");
        if (!(config.Dropout >= 0f && config.Dropout < 1f))
            throw new ArgumentException($"LoraLinear '{ModuleName}': dropout must be in [0, 1), got {config.Dropout}.");
        if (BaseLayer.IsQuantized && (config.Init.ReadsBase() || config.UseDora))
            throw new ArgumentException($"LoraLinear '{ModuleName}': {(config.UseDora ? "DoRA" : config.Init + " initialisation")} reads the base weight (PiSSA and OLoRA rewrite it), which is stored {BaseLayer.QuantizedWeight!.DType}; use Default or Gaussian without DoRA.");
        if (BaseLayer.FanInFanOut && config.Init.ReadsBase())
            throw new ArgumentException($"LoraLinear '{ModuleName}': {config.Init} initialisation is not supported on a Conv1D (fan_in_fan_out) layer; use Default or Gaussian.");
        var a = new LoraFactor(r, inF);
        var b = new LoraFactor(outF, r);
        LoraInitializer.Apply(config.Init, a.Weight, b.Weight, BaseLayer.Weight, config.Scale, generator, config.PissaIterations,
            config.LoftQIterations);
        LoraA.Add(name, a);
        LoraB.Add(name, b);
        if (config.UseDora)
        {
            // PEFT's DoraLinearLayer.update_layer: m starts as ‖W + s·B·A‖, so the new adapter changes nothing.
            var m = new DoraMagnitude(outF);
            Dora.FillWeightNorm(BaseLayer.Weight, BaseLayer.FanInFanOut, a.Weight, b.Weight, (float)config.Scale,
                m.Weight.Data);
            (LoraMagnitude ??= RegisterModule("lora_magnitude_vector", new DoraMagnitudes())).Add(name, m);
        }
        _configs.Add(name, config);
        _order.Add(name);
        _dropoutGenerators.Add(name, generator);
        ActiveAdapter ??= name;
    }

    /// <summary>
    /// Makes <paramref name="name"/> the adapter <see cref="Forward"/> uses (PEFT's <c>set_adapter</c>); null
    /// leaves no adapter active, so the layer computes its base alone (how a model-wide active adapter that
    /// this layer does not carry behaves in PEFT).
    /// </summary>
    /// <exception cref="KeyNotFoundException">No such adapter.</exception>
    /// <exception cref="InvalidOperationException">Another adapter is merged.</exception>
    public void SetActiveAdapter(string? name)
    {
        if (name is not null && !_configs.ContainsKey(name)) throw new KeyNotFoundException($"LoraLinear '{ModuleName}': no adapter '{name}'; adapters: {string.Join(", ", _configs.Keys)}.");
        if (IsMerged && MergedAdapter != name) throw new InvalidOperationException($"LoraLinear '{ModuleName}': adapter '{MergedAdapter}' is merged; call Unmerge before activating '{name ?? "none"}'.");
        ActiveAdapter = name;
    }

    /// <summary>Removes adapter <paramref name="name"/> and its factors (PEFT's layer <c>delete_adapter</c>); when it
    /// was active, no adapter is (the model picks the next).</summary>
    /// <exception cref="KeyNotFoundException">No such adapter.</exception>
    /// <exception cref="InvalidOperationException">It is merged (unmerge first).</exception>
    public void DeleteAdapter(string name)
    {
        if (!_configs.ContainsKey(name))
            throw new KeyNotFoundException($"LoraLinear '{ModuleName}': no adapter '{name}'.");
        if (MergedAdapter == name)
            throw new InvalidOperationException($"LoraLinear '{ModuleName}': adapter '{name}' is merged; unmerge it first.");
        LoraA.Remove(name);
        LoraB.Remove(name);
        LoraMagnitude?.Remove(name);   // PEFT's delete_adapter clears lora_magnitude_vector too
        _configs.Remove(name);
        _order.Remove(name);
        _dropoutGenerators.Remove(name);
        if (ActiveAdapter == name) ActiveAdapter = null;
    }

    /// <summary>The configuration adapter <paramref name="name"/> was added with.</summary>
    public LoraConfig AdapterConfig(string name) => _configs.TryGetValue(name, out var c)
        ? c : throw new KeyNotFoundException($"LoraLinear '{ModuleName}': no adapter '{name}'.");

    /// <summary>The scale of adapter <paramref name="name"/> (α, α/r or α/√r).</summary>
    public double Scale(string name) => AdapterConfig(name).Scale;

    /// <summary>ΔW = scale·B·A of adapter <paramref name="name"/> (out×in, whatever the base's layout), computed in
    /// double then rounded once.</summary>
    public Tensor DeltaWeight(string name)
    {
        var delta = new Tensor(BaseLayer.OutFeatures, BaseLayer.InFeatures);
        LowRank.CopyTo(DeltaWeightDouble(name), delta.Data);
        return delta;
    }

    /// <inheritdoc />
    protected override IEnumerable<TorchGenerator> OwnGenerators() => _dropoutGenerators.Values;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        bool inOut = BaseLayer.FanInFanOut;
        if (AdaptersDisabled)
            return BaseLayer.IsQuantized ? BaseLayer.Forward(input)
                : Functional.Linear(input, _unmergedWeight ?? BaseLayer.Weight, BaseLayer.Bias, inOut);
        if (!IsMerged && ActiveAdapter is { } dora && IsDora(dora)) return DoraForward(input, dora);
        Tensor y = BaseLayer.IsQuantized ? BaseLayer.Forward(input)   // a quantised base (QLoRA)
            : Functional.Linear(input, BaseLayer.Weight, BaseLayer.Bias, inOut);
        if (IsMerged || ActiveAdapter is null) return y;
        string name = ActiveAdapter;
        LoraConfig config = _configs[name];
        Tensor h = Training && config.Dropout > 0f ? Functional.Dropout(input, config.Dropout, _dropoutGenerators[name]) : input;
        // y + scale·B(A h), added in place into the base output: one activation per layer instead of four.
        Tensor low = LoraA[name].Forward(h);   // (…, r)
        return Autograd.Ops.LowRankAddOp.Apply(y, low, LoraB[name].Weight, (float)config.Scale);
    }

    /// <summary>DoRA's forward for adapter <paramref name="name"/> (see <see cref="Dora"/>): the base product is
    /// rescaled there, so it is not computed here first.</summary>
    private Tensor DoraForward(Tensor input, string name)
    {
        LoraConfig config = _configs[name];
        Tensor? dropped = Training && config.Dropout > 0f
            ? Functional.Dropout(input, config.Dropout, _dropoutGenerators[name])
            : null;
        return Dora.Forward(input, dropped, BaseLayer, LoraA[name].Weight, LoraB[name].Weight,
            LoraMagnitude![name].Weight, (float)config.Scale);
    }

    /// <summary>
    /// Folds the active adapter into the base weight, <c>W ← W + scale·B·A</c> (PEFT's <c>merge</c>; for DoRA
    /// <c>W ← m/‖W + scale·B·A‖ ⊙ (W + scale·B·A)</c>, see <see cref="Dora.MergedWeight"/>), so the
    /// forward is a single GEMM. The sum is formed in double and rounded once. The previous weight is kept,
    /// so <see cref="Unmerge"/> restores it bit for bit: subtracting ΔW in float would leave a rounding error of
    /// order 2⁻²⁴·|ΔW| in each element instead.
    /// </summary>
    /// <exception cref="InvalidOperationException">Already merged, or there is no adapter.</exception>
    public void Merge()
    {
        if (IsMerged) throw new InvalidOperationException($"LoraLinear '{ModuleName}': adapter '{MergedAdapter}' is already merged.");
        if (ActiveAdapter is null) throw new InvalidOperationException($"LoraLinear '{ModuleName}': there is no adapter to merge.");
        if (BaseLayer.IsQuantized) throw new InvalidOperationException($"LoraLinear '{ModuleName}': the base weight is stored {BaseLayer.QuantizedWeight!.DType}; merging into a quantised base would round the adapter away. Load the base with --base-dtype f32 to merge.");
        Tensor w = BaseLayer.Weight;
        _unmergedWeight = w.Clone();
        var delta = DeltaWeightDouble(ActiveAdapter);
        var merged = IsDora(ActiveAdapter)
            ? Dora.MergedWeight(w, BaseLayer.FanInFanOut, delta, LoraMagnitude![ActiveAdapter].Weight.Data)
            : LowRank.ToMatrix(w) + (BaseLayer.FanInFanOut ? delta.Transpose() : delta);
        LowRank.CopyTo(merged, w.Data);
        MergedAdapter = ActiveAdapter;
    }

    /// <summary>Restores the base weight saved by <see cref="Merge"/> (PEFT's <c>unmerge</c>); exact.</summary>
    /// <exception cref="InvalidOperationException">Nothing is merged.</exception>
    public void Unmerge()
    {
        if (_unmergedWeight is null) throw new InvalidOperationException($"LoraLinear '{ModuleName}': nothing is merged.");
        _unmergedWeight.Data.CopyTo(BaseLayer.Weight.Data);
        _unmergedWeight = null;
        MergedAdapter = null;
    }

    /// <summary>Merges the active adapter (if not yet merged) and returns the base layer, which now carries W +
    /// ΔW.</summary>
    public Linear MergeAndUnload()
    {
        if (!IsMerged && ActiveAdapter is not null) Merge();
        _unmergedWeight = null;
        return BaseLayer;
    }

    private MathNet.Numerics.LinearAlgebra.Matrix<double> DeltaWeightDouble(string name)
    {
        double scale = Scale(name);
        return scale * (LowRank.ToMatrix(LoraB[name].Weight) * LowRank.ToMatrix(LoraA[name].Weight));
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"LoraLinear({BaseLayer}, adapters=[{string.Join(", ", _configs.Select(c => $"{c.Key}: r={c.Value.Rank}, scale={c.Value.Scale}"))}], active={ActiveAdapter ?? "none"})";
}
