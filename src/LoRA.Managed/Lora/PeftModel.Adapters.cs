using LoRA.Managed.IO;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Lora;

/// <summary>
/// The adapters' life on a loaded base, as PEFT's <c>LoraModel</c> methods: adding, switching, loading beside others,
/// deleting, combining, merging and unloading, each checked before the model changes.
/// </summary>
public sealed partial class PeftModel
{
    /// <summary>
    /// Adds another adapter (PEFT's <c>add_adapter</c>) with its own targets, rank and init; it does not become
    /// active until <see cref="SetAdapter"/>. Everything is validated before the model changes.
    /// </summary>
    public void AddAdapter(string adapterName, LoraConfig config, TorchGenerator generator)
    {
        ArgumentException.ThrowIfNullOrEmpty(adapterName);
        ArgumentNullException.ThrowIfNull(generator);
        if (_configs.ContainsKey(adapterName))
            throw new ArgumentException($"PeftModel: adapter '{adapterName}' already exists.");
        var plan = InjectionPlan.Create(BaseModel, config, adapterName);
        foreach (var (name, module) in plan.Targets)
        {
            LoraLayer layer = module as LoraLayer ?? Swap<LoraLayer>(name, module is Embedding table
                ? new LoraEmbedding(table, name) : new LoraLinear((Linear)module, name));
            layer.AddAdapter(adapterName, config.ForModule(name), generator);
            layer.AdaptersDisabled = _adaptersDisabled;
        }
        _configs.Add(adapterName, config);
        _modulesToSave.Add(adapterName, plan.ModulesToSave.Select(m => m.Key).ToList());
        // PiSSA, OLoRA and LoftQ rewrite the base's weights: a recorded fingerprint of them no longer holds (this
        // PeftModel keeps the one it took first, of the base the adapter was made for).
        if (config.Init.RewritesBase()) (BaseModel as IFloat32Checksum)?.ForgetFloat32Checksum();
        if (ActiveAdapter.Length == 0) ActiveAdapter = adapterName;
        SyncActiveAdapter();
    }

    /// <summary>Makes <paramref name="adapterName"/> active (PEFT's <c>set_adapter</c>): only its factors, biases and
    /// modules to save train.</summary>
    /// <exception cref="KeyNotFoundException">No such adapter.</exception>
    public void SetAdapter(string adapterName)
    {
        if (!_configs.ContainsKey(adapterName))
            throw new KeyNotFoundException($"PeftModel: no adapter '{adapterName}'; adapters: " +
                $"{string.Join(", ", _configs.Keys)}.");
        // PEFT unmerges with a warning here; refusing keeps the merged weights the caller asked for, and checking
        // first leaves every layer as it was.
        if (FirstMerged((_, merged) => merged != adapterName) is var (layerName, mergedName))
            throw new InvalidOperationException($"PeftModel.SetAdapter: adapter '{mergedName}' is merged (into "
                + $"'{layerName}' and maybe others); call Unmerge before activating '{adapterName}'.");
        ActiveAdapter = adapterName;
        SyncActiveAdapter();
    }

    /// <summary>
    /// PEFT's <c>load_adapter</c>: reads the adapter saved in <paramref name="directory"/> and adds it as
    /// <paramref name="adapterName"/> beside the adapters already here, without reloading the base. It is checked as
    /// <see cref="FromPretrained"/> checks (names, shapes, finite values, the base's checksum) before the model
    /// changes, and it does not become active until <see cref="SetAdapter"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The name is taken.</exception>
    /// <exception cref="InvalidDataFormatException">A file is malformed or does not fit this model (named).</exception>
    /// <exception cref="InvalidOperationException">The adapter was trained on another base, or it is a PiSSA adapter
    /// (which rewrites the base weight the other adapters share).</exception>
    public void LoadAdapter(string directory, string adapterName, bool verifyBaseChecksum = true,
        TorchGenerator? generator = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentException.ThrowIfNullOrEmpty(adapterName);
        if (_configs.ContainsKey(adapterName))
            throw new ArgumentException(
                $"PeftModel.LoadAdapter: adapter '{adapterName}' already exists; delete it first or " +
                "choose another name.");
        string configPath = Path.Combine(directory, AdapterConfigFile.FileName);
        if (AdapterConfigFile.Read(configPath).Init.RewritesBase())
            throw new InvalidOperationException($"PeftModel.LoadAdapter: {configPath} is a PiSSA, OLoRA " +
                "or LoftQ adapter, whose "
                + "base weight is the residual; loading it beside other adapters would change theirs. Load it with "
                + "FromPretrained on a fresh base.");
        AdapterFiles.Load(BaseModel, directory, generator ?? new TorchGenerator(0), verifyBaseChecksum,
            adapterName, this);
    }

    /// <summary>
    /// PEFT's <c>delete_adapter</c>: removes the adapter's factors (DoRA magnitudes and embedding factors included)
    /// from every layer and forgets its configuration.
    /// Deleting the active adapter makes the first remaining one (by ordinal name, as PEFT chooses) active, or none.
    /// </summary>
    /// <exception cref="KeyNotFoundException">No such adapter.</exception>
    /// <exception cref="InvalidOperationException">It is merged into some layer (call <see cref="Unmerge"/>
    /// first).</exception>
    public void DeleteAdapter(string adapterName)
    {
        if (!_configs.ContainsKey(adapterName))
            throw new KeyNotFoundException(
                $"PeftModel: no adapter '{adapterName}'; adapters: {string.Join(", ", _configs.Keys)}.");
        var layers = AdaptedLayers().Where(l => l.Value.Adapters.Contains(adapterName)).ToList();
        if (FirstMerged((_, merged) => merged == adapterName) is var (mergedInto, _))
            throw new InvalidOperationException($"PeftModel: cannot delete adapter '{adapterName}' while it is merged "
                + $"(into '{mergedInto}' and maybe others); call Unmerge first.");
        foreach (var (_, layer) in layers) layer.DeleteAdapter(adapterName);
        _configs.Remove(adapterName);
        _modulesToSave.Remove(adapterName);
        if (ActiveAdapter == adapterName)
            ActiveAdapter = _configs.Keys.Order(StringComparer.Ordinal).FirstOrDefault() ?? "";
        SyncActiveAdapter();
    }

    /// <summary>
    /// PEFT's <c>unload</c>: puts each adapted layer's base <see cref="Linear"/> or <see cref="Embedding"/> back in its
    /// place and returns the base model without merging anything. As in PEFT, a layer merged beforehand keeps its
    /// merged weight (call <see cref="Unmerge"/> first for the original), and a PiSSA base stays the residual. Its
    /// parameters stay frozen. This PeftModel holds no adapters afterwards.
    /// </summary>
    public Module Unload()
    {
        foreach (var (name, layer) in AdaptedLayers().ToList()) Swap(name, layer.BaseLayer);
        return ForgetAdapters();
    }

    // After unload or merge-and-unload: no adapter is left; the plain base model.
    private Module ForgetAdapters()
    {
        _configs.Clear();
        _modulesToSave.Clear();
        ActiveAdapter = "";
        return BaseModel;
    }

    /// <summary>
    /// PEFT's <c>add_weighted_adapter</c>: a new adapter <paramref name="adapterName"/> combining
    /// <paramref name="adapters"/> with <paramref name="weights"/> (see <see cref="AdapterCombination"/> for the three
    /// rules). It is added beside them, not made active; its dropout masks, if it trains, come from
    /// <paramref name="generator"/> (seed 0 when null).
    /// </summary>
    /// <exception cref="ArgumentException">An adapter is missing or uses DoRA, the name is taken, the lists differ in
    /// length, or the ranks do not suit the combination (named).</exception>
    public void AddWeightedAdapter(IReadOnlyList<string> adapters, IReadOnlyList<double> weights, string adapterName,
        CombinationType combinationType = CombinationType.Svd, int? svdRank = null, double? svdClamp = null,
        TorchGenerator? generator = null) =>
        AdapterCombination.Add(this, adapters, weights, adapterName, combinationType, svdRank, svdClamp, generator);

    /// <summary>Folds the active adapter into every adapted layer's weight (see
    /// <see cref="LoraLayer.Merge"/>).</summary>
    public void Merge()
    {
        foreach (var (_, layer) in AdaptedLayers())
            if (!layer.IsMerged && layer.ActiveAdapter == ActiveAdapter) layer.Merge();
        (BaseModel as IFloat32Checksum)?.ForgetFloat32Checksum();   // the recorded float32 weights are no more
    }

    /// <summary>Restores every merged layer's weight exactly (see <see cref="LoraLayer.Unmerge"/>).</summary>
    public void Unmerge()
    {
        foreach (var (_, layer) in AdaptedLayers()) if (layer.IsMerged) layer.Unmerge();
    }

    /// <summary>
    /// Merges the active adapter and puts each adapted layer's <see cref="Linear"/> (now carrying W + ΔW) back in
    /// its place, returning the plain base model (PEFT's <c>merge_and_unload</c>). Its parameters stay frozen, as in
    /// PEFT; call <c>RequiresGrad(true)</c> to train it further. This PeftModel holds no adapters afterwards.
    /// </summary>
    public Module MergeAndUnload()
    {
        (BaseModel as IFloat32Checksum)?.ForgetFloat32Checksum();   // the recorded float32 weights are no more
        foreach (var (name, layer) in AdaptedLayers().ToList())
        {
            if (layer.ActiveAdapter != ActiveAdapter && layer.Adapters.Contains(ActiveAdapter))
                layer.SetActiveAdapter(ActiveAdapter);
            Swap(name, layer.Adapters.Contains(ActiveAdapter) ? layer.MergeAndUnload() : layer.BaseLayer);
        }
        return ForgetAdapters();
    }

    /// <summary>The first adapted layer (Linear or embedding) whose merged adapter satisfies
    /// <paramref name="match"/>(layer, adapter), with that adapter; null when none.</summary>
    private (string Layer, string Adapter)? FirstMerged(Func<string, string, bool> match)
    {
        foreach (var (name, layer) in AdaptedLayers())
            if (layer.MergedAdapter is { } m && match(name, m)) return (name, m);
        return null;
    }
}
