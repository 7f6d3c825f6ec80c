using System.Globalization;
using LoRA.Managed.IO;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Lora;

/// <summary>
/// A model with LoRA adapters injected, PEFT's <c>PeftModel</c>. Build it with <see cref="LoraModel.GetPeftModel"/>.
/// </summary>
/// <remarks>
/// <para><b>Naming.</b> Its children are the base model's own children under the same names, so its
/// <see cref="Module.NamedParameters"/> are the base model's state_dict names with one substitution per
/// adapted layer X: <c>X.weight</c>/<c>X.bias</c> become <c>X.base_layer.weight</c>/<c>X.base_layer.bias</c>, and
/// <c>X.lora_A.&lt;adapter&gt;.weight</c> (r×in) and <c>X.lora_B.&lt;adapter&gt;.weight</c> (out×r) appear. These are
/// PEFT's in-memory names without its <c>base_model.model.</c> prefix; the adapter file adds that prefix and
/// drops the adapter name (<c>base_model.model.X.lora_A.weight</c>), as PEFT's does.</para>
/// <para>The base model is modified in place (its Linear children are swapped for <see cref="LoraLinear"/>s);
/// <see cref="MergeAndUnload"/> gives it back as a plain model.</para>
/// </remarks>
public sealed partial class PeftModel : Module, ICausalLanguageModel
{
    private readonly Dictionary<string, LoraConfig> _configs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _modulesToSave = new(StringComparer.Ordinal);
    private bool _adaptersDisabled;

    internal PeftModel(Module baseModel)
    {
        BaseModel = baseModel;
        BaseChecksum = Lora.BaseChecksum.Compute(baseModel);
        // Re-register the base model's own parameters and children under the same names (see remarks).
        foreach (var (name, p) in baseModel.NamedParameters().Where(p => !p.Key.Contains('.')))
            RegisterParameter(name, p);
        foreach (var (name, child) in baseModel.NamedChildren()) RegisterModule(name, child);
        baseModel.RequiresGrad(false);
    }

    /// <summary>The wrapped model (modified in place: adapted layers are <see cref="LoraLinear"/>s).</summary>
    public Module BaseModel { get; }

    /// <summary>SHA-256 of the base model's parameters before any adapter touched them (see
    /// <see cref="Lora.BaseChecksum"/>).</summary>
    public string BaseChecksum { get; internal set; }

    /// <summary>The adapter the forward uses and the optimiser trains.</summary>
    public string ActiveAdapter { get; private set; } = "";

    /// <summary>The adapters by name with their configurations, in the order added.</summary>
    public IReadOnlyDictionary<string, LoraConfig> Adapters => _configs;

    /// <summary>The configuration of the active adapter.</summary>
    public LoraConfig Config => _configs[ActiveAdapter];

    /// <summary>Every adapted layer (Linear and embedding) with its full name, in module order.</summary>
    public IEnumerable<KeyValuePair<string, LoraLayer>> AdaptedLayers() => AdaptedLayers<LoraLayer>();

    /// <summary>The adapted Linear layers with their full names.</summary>
    public IEnumerable<KeyValuePair<string, LoraLinear>> LoraLayers() => AdaptedLayers<LoraLinear>();

    /// <summary>The adapted embeddings (PEFT's <c>lora.Embedding</c>) with their full names.</summary>
    public IEnumerable<KeyValuePair<string, LoraEmbedding>> EmbeddingLayers() => AdaptedLayers<LoraEmbedding>();

    private IEnumerable<KeyValuePair<string, T>> AdaptedLayers<T>() where T : LoraLayer =>
        BaseModel.NamedModules().Where(p => p.Value is T).Select(p => new KeyValuePair<string, T>(p.Key, (T)p.Value));

    /// <summary>Names of the modules kept trainable and saved with adapter <paramref name="adapterName"/>.</summary>
    public IReadOnlyList<string> ModulesToSave(string adapterName) => _modulesToSave[adapterName];

    /// <summary>When true every adapted layer computes its base layer only (PEFT's <c>with
    /// model.disable_adapter():</c>).</summary>
    public bool AdaptersDisabled
    {
        get => _adaptersDisabled;
        set
        {
            _adaptersDisabled = value;
            foreach (var (_, layer) in AdaptedLayers()) layer.AdaptersDisabled = value;
        }
    }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => BaseModel.Forward(input);

    /// <summary>Parameters that train (the active adapter's factors, plus biases and modules to save as
    /// configured).</summary>
    public long TrainableParameterCount => ParameterCount(trainableOnly: true);

    /// <summary>Every parameter, adapters included (PEFT's "all params"); a weight stored quantised counts its
    /// elements, as PEFT counts a 4-bit base's.</summary>
    public long AllParameterCount => ParameterCount() + BaseModel.NamedModules()
        .Sum(m => m.Value is IQuantizableWeight { QuantizedWeight: { } q } ? (long)q.Rows * q.Columns : 0);

    /// <summary>The base model's parameters alone (all minus every adapter's factors), the blog's
    /// denominator.</summary>
    public long BaseParameterCount => AllParameterCount
        - AdaptedLayers().Sum(l => l.Value.ParameterCount() - l.Value.BaseLayer.ParameterCount());

    /// <summary>
    /// PEFT's <c>print_trainable_parameters()</c> line exactly, e.g.
    /// <c>trainable params: 1,064 || all params: 536,882 || trainable%: 0.1982</c>.
    /// </summary>
    public string TrainableParameterSummary()
    {
        long t = TrainableParameterCount, a = AllParameterCount;
        return string.Create(CultureInfo.InvariantCulture,
            $"trainable params: {t:N0} || all params: {a:N0} || trainable%: {(a == 0 ? 0.0 : 100.0 * t / a):F4}");
    }

    /// <summary>
    /// Writes adapter <paramref name="adapterName"/> (default: the active one) to <paramref name="directory"/> as
    /// PEFT does: <c>adapter_model.safetensors</c> and <c>adapter_config.json</c>. See <see cref="AdapterFiles"/>.
    /// </summary>
    public void SaveAdapter(string directory, string? adapterName = null) =>
        AdapterFiles.Save(this, directory, adapterName ?? ActiveAdapter);

    /// <summary>The base model's logits (its adapted layers carry the adapters).</summary>
    /// <exception cref="InvalidOperationException">The base model is not a causal language model.</exception>
    public Tensor Forward(ReadOnlySpan<int> ids, int batch, int time) => BaseLanguageModel.Forward(ids, batch, time);

    /// <inheritdoc />
    public Tensor Loss(ReadOnlySpan<int> ids, ReadOnlySpan<int> targets, int batch, int time) =>
        BaseLanguageModel.Loss(ids, targets, batch, time);

    /// <inheritdoc />
    public double NextTokenLoss(ReadOnlySpan<int> ids, ReadOnlySpan<int> targets, int batch, int time) =>
        BaseLanguageModel.NextTokenLoss(ids, targets, batch, time);

    /// <inheritdoc />
    public int VocabSize => BaseLanguageModel.VocabSize;

    /// <inheritdoc />
    public int MaxSequenceLength => BaseLanguageModel.MaxSequenceLength;

    private ICausalLanguageModel BaseLanguageModel => BaseModel as ICausalLanguageModel
        ?? throw new InvalidOperationException($"PeftModel: the base model ({BaseModel.GetType().Name}) is not a " +
            "causal language model.");

    /// <summary>A checkpoint keeps the active adapter as PEFT writes it (<c>adapter_model.safetensors</c> +
    /// <c>adapter_config.json</c>).</summary>
    public override IReadOnlyList<(string FileName, byte[] Bytes)> SerializeTrainable()
    {
        var (weights, config) = AdapterFiles.Serialize(this, ActiveAdapter);
        return [(AdapterFiles.WeightsFileName, weights), (AdapterConfigFile.FileName, config)];
    }

    /// <summary>Loads a checkpoint's adapter weights into the active adapter; every name and shape is checked
    /// first.</summary>
    /// <exception cref="InvalidDataFormatException">The file is malformed or a tensor does not belong to the model
    /// (named).</exception>
    public override void LoadTrainable(string directory)
    {
        string path = Path.Combine(directory, AdapterFiles.WeightsFileName);
        const string prefix = "base_model.model.";
        var mine = StateDict();
        var targets = new List<(Tensor Target, Tensor Source)>();
        foreach (var (key, t) in SafeTensors.Read(path).Tensors)
        {
            // PEFT's file drops the adapter name: X.lora_A.weight is X.lora_A.<adapter>.weight in memory.
            string name = key.StartsWith(prefix, StringComparison.Ordinal) ? key[prefix.Length..] : key;
            name = AdapterFiles.AdapterKeyToInMemory(name, ActiveAdapter);
            targets.Add((FindForLoad(mine, name, t, path, key), t));
            FiniteValues.Require(t.Data, path, key);
        }
        foreach (var (target, source) in targets) source.Data.CopyTo(target.Data);
    }

    /// <summary>
    /// PEFT's <c>PeftModel.from_pretrained</c>: restores an adapter saved by <see cref="SaveAdapter"/> (or by PEFT)
    /// onto <paramref name="baseModel"/>. Both files are read and every tensor's name and shape checked against the
    /// model before it changes. If the adapter records the checksum of the base it was trained on and
    /// <paramref name="verifyBaseChecksum"/> is true (the default), a different base is refused. A PiSSA adapter is
    /// restored onto the original model: the residual base is recomputed, as PEFT does for
    /// <c>init_lora_weights="pissa"</c>.
    /// </summary>
    /// <exception cref="InvalidDataFormatException">A file is malformed, or a tensor is missing, unexpected or does
    /// not fit (named).</exception>
    /// <exception cref="InvalidOperationException">The base model's checksum differs from the one recorded.</exception>
    public static PeftModel FromPretrained(Module baseModel, string directory, TorchGenerator? generator = null,
        bool verifyBaseChecksum = true, string adapterName = LoraModel.DefaultAdapterName) =>
        AdapterFiles.Load(baseModel, directory, generator ?? new TorchGenerator(0), verifyBaseChecksum, adapterName);

    /// <summary>Replaces the configuration recorded for an adapter (used by loading, whose init config differs from the
    /// file's).</summary>
    internal void SetConfig(string adapterName, LoraConfig config) => _configs[adapterName] = config;

    /// <summary>
    /// Points every layer at the model's active adapter, or at none where the layer does not carry it, then
    /// freezes everything and unfreezes what the active adapter trains.
    /// </summary>
    private void SyncActiveAdapter()
    {
        foreach (var (_, layer) in AdaptedLayers())
            layer.SetActiveAdapter(layer.Adapters.Contains(ActiveAdapter) ? ActiveAdapter : null);
        ApplyTrainable();
    }

    /// <summary>Freezes everything, then unfreezes what the active adapter trains.</summary>
    private void ApplyTrainable()
    {
        BaseModel.RequiresGrad(false);
        if (!_configs.TryGetValue(ActiveAdapter, out var config)) return;
        foreach (var (_, layer) in AdaptedLayers())
            if (layer.Adapters.Contains(ActiveAdapter))
            {
                foreach (var (_, p) in layer.NamedAdapterParameters(ActiveAdapter)) p.RequiresGrad = true;
                if (config.Bias == LoraBias.LoraOnly && layer.BaseLayer is Linear { Bias: { } b })
                    b.RequiresGrad = true;
            }
        if (config.Bias == LoraBias.All)
            foreach (var (name, p) in BaseModel.NamedParameters())
                if (name == "bias" || name.EndsWith(".bias", StringComparison.Ordinal)) p.RequiresGrad = true;
        foreach (string name in _modulesToSave[ActiveAdapter])
            ModuleNamed(name).RequiresGrad(true);
    }

    internal Module ModuleNamed(string name) => BaseModel.NamedModules().First(m => m.Key == name).Value;

    /// <summary>Puts <paramref name="replacement"/> at <paramref name="fullName"/> in the base model (and in this model
    /// when it is a top-level child).</summary>
    private T Swap<T>(string fullName, T replacement) where T : Module
    {
        int dot = fullName.LastIndexOf('.');
        string parentName = dot < 0 ? "" : fullName[..dot], child = fullName[(dot + 1)..];
        ModuleNamed(parentName).ReplaceChild(child, replacement);
        if (parentName.Length == 0) ReplaceChild(child, replacement);
        return replacement;
    }
}
