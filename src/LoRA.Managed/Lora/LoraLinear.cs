using LoRA.Managed.Autograd;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using MathNet.Numerics.LinearAlgebra;

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
public sealed class LoraLinear : LoraLayer
{
    private readonly Dictionary<string, TorchGenerator> _dropoutGenerators = new(StringComparer.Ordinal);

    /// <summary>Wraps <paramref name="baseLayer"/> and freezes its weight and bias; add adapters with
    /// <see cref="LoraLayer.AddAdapter"/>.</summary>
    /// <param name="baseLayer">The layer to adapt.</param>
    /// <param name="moduleName">Its full name in the model, used in error messages.</param>
    public LoraLinear(Linear baseLayer, string moduleName = "") : base(baseLayer, moduleName)
    {
        BaseLayer = baseLayer;
        LoraA = RegisterModule("lora_A", new AdapterDict<LoraFactor>());
        LoraB = RegisterModule("lora_B", new AdapterDict<LoraFactor>());
    }

    /// <summary>The wrapped layer (its weight is the residual after PiSSA, the merged weight after
    /// <see cref="LoraLayer.Merge"/>).</summary>
    public override Linear BaseLayer { get; }

    /// <summary>The A factors (r×in) by adapter name.</summary>
    public AdapterDict<LoraFactor> LoraA { get; }

    /// <summary>The B factors (out×r) by adapter name.</summary>
    public AdapterDict<LoraFactor> LoraB { get; }

    /// <summary>DoRA's magnitude vectors by adapter name (child <c>lora_magnitude_vector</c>, registered with the
    /// first DoRA adapter), or null when no adapter of this layer uses DoRA.</summary>
    public AdapterDict<DoraMagnitude>? LoraMagnitude { get; private set; }

    /// <summary>True when adapter <paramref name="name"/> uses DoRA on this layer.</summary>
    public bool IsDora(string name) => LoraMagnitude?.Contains(name) ?? false;

    private protected override Tensor BaseWeight => BaseLayer.Weight;

    /// <summary>
    /// Checks that an adapter with <paramref name="config"/> fits <paramref name="layer"/>: the rank in
    /// 1..min(in, out), the dropout, and an initialisation or DoRA that reads the base only on a float, Linear-layout,
    /// finite weight.
    /// <see cref="LoraLayer.AddAdapter"/> and <see cref="LoraModel.Validate"/> (before the model changes) both ask
    /// here; <paramref name="who"/> starts the message.
    /// </summary>
    /// <exception cref="ArgumentException">It does not fit (named).</exception>
    internal static void CheckFits(Linear layer, LoraConfig config, string who)
    {
        int max = Math.Min(layer.InFeatures, layer.OutFeatures), r = config.Rank;
        if (r < 1 || r > max)
            throw new ArgumentException($"{who}: rank {r} must be in 1..{max} for a Linear with "
                + $"weight {Shapes.Format(layer.Weight.Shape)} (out×in).");
        if (!(config.Dropout >= 0f && config.Dropout < 1f))
            throw new ArgumentException($"{who}: dropout must be in [0, 1), got {config.Dropout}.");
        if (layer.IsQuantized && (config.Init.ReadsBase() || config.UseDora))
            throw new ArgumentException($"{who}: {(config.UseDora ? "DoRA" : config.Init + " initialisation")} reads "
                + "the base weight (PiSSA and OLoRA rewrite it), which is stored "
                + $"{layer.QuantizedWeight!.DType}; use Default or Gaussian without DoRA.");
        if (layer.FanInFanOut && config.Init.ReadsBase())
            throw new ArgumentException($"{who}: {config.Init} initialisation is not supported on a Conv1D "
                + "(fan_in_fan_out) layer; use Default or Gaussian.");
        // An SVD of a matrix holding NaN or infinity is undefined (MathNet's fails with an index error deep inside).
        if (config.Init.ReadsBase() && IO.FiniteValues.IndexOfNonFinite(layer.Weight.Data) is int bad and >= 0)
            throw new ArgumentException($"{who}: weight element {bad} is {layer.Weight.Data[bad]}; {config.Init} "
                + "initialisation takes its SVD, which needs finite weights.");
    }

    /// <summary>A (r×in) and B (out×r) from <paramref name="config"/>'s initialisation, and DoRA's magnitude when
    /// asked; see <see cref="CheckFits"/> for what is refused.</summary>
    private protected override void CreateAdapter(string name, LoraConfig config, TorchGenerator generator)
    {
        CheckFits(BaseLayer, config, Who);
        int inF = BaseLayer.InFeatures, outF = BaseLayer.OutFeatures, r = config.Rank;
        var a = new LoraFactor(r, inF);
        var b = new LoraFactor(outF, r);
        LoraInitializer.Apply(config.Init, a.Weight, b.Weight, BaseLayer.Weight, config.Scale, generator,
            config.PissaIterations, config.LoftQIterations);
        LoraA.Add(name, a);
        LoraB.Add(name, b);
        if (config.UseDora)
        {
            // PEFT's DoraLinearLayer.update_layer: m starts as ‖W + s·B·A‖, so the new adapter changes nothing.
            var m = new DoraMagnitude(outF);
            Dora.FillWeightNorm(BaseLayer.Weight, BaseLayer.FanInFanOut, a.Weight, b.Weight, (float)config.Scale,
                m.Weight.Data);
            (LoraMagnitude ??= RegisterModule("lora_magnitude_vector", new AdapterDict<DoraMagnitude>())).Add(name, m);
        }
        _dropoutGenerators.Add(name, generator);
    }

    private protected override void DeleteWeights(string name)
    {
        LoraA.Remove(name);
        LoraB.Remove(name);
        LoraMagnitude?.Remove(name);   // PEFT's delete_adapter clears lora_magnitude_vector too
        _dropoutGenerators.Remove(name);
    }

    internal override (Tensor A, Tensor B) Factors(string name) => (LoraA[name].Weight, LoraB[name].Weight);

    /// <inheritdoc />
    protected override void AddOwnGenerators(List<TorchGenerator> into)
    {
        foreach (TorchGenerator g in _dropoutGenerators.Values) into.Add(g);
    }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        bool inOut = BaseLayer.FanInFanOut;
        if (AdaptersDisabled)
            return BaseLayer.IsQuantized ? BaseLayer.Forward(input)
                : Functional.Linear(input, UnmergedWeight ?? BaseLayer.Weight, BaseLayer.Bias, inOut);
        if (!IsMerged && ActiveAdapter is { } dora && IsDora(dora)) return DoraForward(input, dora);
        Tensor y = BaseLayer.IsQuantized ? BaseLayer.Forward(input)   // a quantised base (QLoRA)
            : Functional.Linear(input, BaseLayer.Weight, BaseLayer.Bias, inOut);
        if (IsMerged || ActiveAdapter is null) return y;
        string name = ActiveAdapter;
        LoraConfig config = AdapterConfig(name);
        Tensor h = Training && config.Dropout > 0f
            ? Functional.Dropout(input, config.Dropout, _dropoutGenerators[name]) : input;
        // y + scale·B(A h), added in place into the base output: one activation per layer instead of four.
        Tensor low = LoraA[name].Forward(h);   // (…, r)
        return Autograd.Ops.LowRankAddOp.Apply(y, low, LoraB[name].Weight, (float)config.Scale);
    }

    /// <summary>DoRA's forward for adapter <paramref name="name"/> (see <see cref="Dora"/>): the base product is
    /// rescaled there, so it is not computed here first.</summary>
    private Tensor DoraForward(Tensor input, string name)
    {
        LoraConfig config = AdapterConfig(name);
        Tensor? dropped = Training && config.Dropout > 0f
            ? Functional.Dropout(input, config.Dropout, _dropoutGenerators[name])
            : null;
        return Dora.Forward(input, dropped, BaseLayer, LoraA[name].Weight, LoraB[name].Weight,
            LoraMagnitude![name].Weight, (float)config.Scale);
    }

    private protected override void RequireMergeable()
    {
        if (BaseLayer.IsQuantized)
            throw new InvalidOperationException($"{Who}: the base weight is stored "
                + $"{BaseLayer.QuantizedWeight!.DType}; merging into a quantised base would round the adapter away. "
                + "Load the base with --base-dtype f32 to merge.");
    }

    /// <summary><c>W + scale·B·A</c> (ΔW transposed for a Conv1D base), or for DoRA
    /// <c>m/‖W + scale·B·A‖ ⊙ (W + scale·B·A)</c> (see <see cref="Dora.MergedWeight"/>).</summary>
    private protected override Matrix<double> MergedWeight(Tensor weight, string name)
    {
        var delta = DeltaWeightDouble(name);
        return IsDora(name)
            ? Dora.MergedWeight(weight, BaseLayer.FanInFanOut, delta, LoraMagnitude![name].Weight.Data)
            : LowRank.ToMatrix(weight) + (BaseLayer.FanInFanOut ? delta.Transpose() : delta);
    }
}
