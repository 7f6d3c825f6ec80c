using LoRA.Managed.IO;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Lora;

/// <summary>
/// PEFT's adapter directory: <c>adapter_model.safetensors</c> (metadata <c>{"format": "pt"}</c>) holding
/// <c>base_model.model.&lt;module&gt;.lora_A.weight</c> / <c>.lora_B.weight</c> for each adapted layer, the trained
/// biases (<c>bias</c> "all"/"lora_only") and the parameters of the modules to save, all under
/// <c>base_model.model.</c> + their in-memory name; and <c>adapter_config.json</c> (<see cref="AdapterConfigFile"/>).
/// The metadata also records <see cref="ChecksumKey"/>, the SHA-256 of the base weights before adaptation.
/// Saving writes both files through <see cref="AtomicFile.WriteAll"/>: both are complete on disk before either
/// replaces an older adapter, and a failure puts the older pair back.
/// </summary>
public static class AdapterFiles
{
    /// <summary>The weights file name PEFT uses.</summary>
    public const string WeightsFileName = "adapter_model.safetensors";

    /// <summary>The metadata key of the base model's checksum.</summary>
    public const string ChecksumKey = "lora_managed.base_sha256";

    /// <summary>
    /// The metadata key of the SHA-256 of the <c>adapter_config.json</c> bytes saved with the weights. The two files
    /// are renamed one after the other; a kill between the renames leaves new weights beside the old config, which this
    /// hash exposes on load (PEFT ignores the key; adapters without it, e.g. PEFT's own, are loaded unchecked).
    /// </summary>
    public const string ConfigHashKey = "lora_managed.config_sha256";

    private const string Prefix = "base_model.model.";

    internal static void Save(PeftModel model, string directory, string adapterName)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string weightsPath = Path.Combine(directory, WeightsFileName);
        var (weights, json) = Serialize(model, adapterName, weightsPath);
        // Both files are written and flushed before either replaces an older adapter, so a failure leaves the
        // old pair (see AtomicFile.WriteAll for the one window that remains: a crash between the two renames).
        AtomicFile.WriteAll(
        [
            (weightsPath, s => s.Write(weights)),
            (Path.Combine(directory, AdapterConfigFile.FileName), s => s.Write(json)),
        ]);
    }

    /// <summary>The bytes of an adapter's two files (weights, config), for callers that write them with other files at
    /// once. With <paramref name="finiteFor"/> (the weights file's path, for the message) a NaN or infinity is refused,
    /// naming the tensor: an adapter file is for others to load, and every loader refuses one.</summary>
    /// <exception cref="InvalidDataFormatException">A tensor to be saved holds a NaN or infinity.</exception>
    internal static (byte[] Weights, byte[] Config) Serialize(PeftModel model, string adapterName,
        string? finiteFor = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!model.Adapters.TryGetValue(adapterName, out var config))
            throw new KeyNotFoundException($"SaveAdapter: no adapter '{adapterName}'; adapters: " +
                $"{string.Join(", ", model.Adapters.Keys)}.");
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, layer) in model.AdaptedLayers())
        {
            if (!layer.Adapters.Contains(adapterName)) continue;
            foreach (var (key, p) in layer.NamedAdapterParameters(adapterName))
                tensors[$"{Prefix}{name}.{InMemoryToAdapterKey(key)}"] = p;
            if (config.Bias == LoraBias.LoraOnly && layer.BaseLayer is Linear { Bias: { } b })
                tensors[$"{Prefix}{name}.base_layer.bias"] = b;
        }
        if (config.Bias == LoraBias.All)
            foreach (var (name, p) in model.NamedParameters())
                if (IsBias(name)) tensors[Prefix + name] = p;
        foreach (string m in model.ModulesToSave(adapterName))
            foreach (var (name, p) in model.ModuleNamed(m).NamedParameters(m)) tensors[Prefix + name] = p;

        if (finiteFor is not null)
            foreach (var (key, t) in tensors) FiniteValues.Require(t.Data, finiteFor, key);

        // PEFT writes fan_in_fan_out: true for GPT-2's Conv1D targets; it follows from the layers, not from the caller.
        bool conv1d = model.LoraLayers()
            .Any(l => l.Value.Adapters.Contains(adapterName) && l.Value.BaseLayer.FanInFanOut);
        var written = config with { FanInFanOut = conv1d };
        // A language model loaded from a folder: PEFT's task type and the base it was trained on.
        if (model.BaseModel is ICausalLanguageModel { NameOrPath: { } source })
            written = written with { TaskType = written.TaskType ?? "CAUSAL_LM",
                BaseModelNameOrPath = written.BaseModelNameOrPath ?? source };
        byte[] json = System.Text.Encoding.UTF8.GetBytes(AdapterConfigFile.ToJson(written));
        var metadata = new Dictionary<string, string> { ["format"] = "pt", [ChecksumKey] = model.BaseChecksum,
            [ConfigHashKey] = Sha256(json) };
        if (model.BaseChecksum.Length == 0) metadata.Remove(ChecksumKey); // a base quantised in code has no fingerprint
        byte[] weights = SafeTensors.Serialize(tensors, metadata);
        return (weights, json);
    }

    /// <summary>Loads an adapter onto <paramref name="baseModel"/>, or, when <paramref name="into"/> is given, adds it
    /// to that model as one more adapter (PEFT's <c>load_adapter</c>), checked the same way.</summary>
    internal static PeftModel Load(Module baseModel, string directory, TorchGenerator generator,
        bool verifyBaseChecksum, string adapterName,
        PeftModel? into = null)
    {
        ArgumentNullException.ThrowIfNull(baseModel);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string configPath = Path.Combine(directory, AdapterConfigFile.FileName),
            weightsPath = Path.Combine(directory, WeightsFileName);
        byte[] configBytes = AdapterConfigFile.ReadBytes(configPath);
        LoraConfig config = AdapterConfigFile.Parse(configBytes, configPath);
        // Header first: names and shapes are checked against the model before any data is read, then the data is
        // checked finite, and only then read straight into the adapter's parameters.
        using var stream = InputFile.OpenRead(weightsPath);
        SafeTensorsHeader header = SafeTensors.ReadHeader(stream, weightsPath);

        if (verifyBaseChecksum && header.Metadata.TryGetValue(ChecksumKey, out string? expected))
        {
            string actual = into?.BaseChecksum ?? BaseChecksum.Compute(baseModel);
            if (actual.Length > 0 && !string.Equals(expected, actual, StringComparison.OrdinalIgnoreCase))
                throw new InvalidOperationException(
                    $"PeftModel.FromPretrained: {weightsPath} was trained on a base model with checksum {expected}, " +
                    $"but this model's is {actual}. " +
                    "Load the base it was trained on, or pass verifyBaseChecksum: false to apply it anyway.");
        }

        InjectionPlan plan;
        try { plan = InjectionPlan.Create(baseModel, config, adapterName); }
        catch (ArgumentException ex)
        {
            throw new InvalidDataFormatException(configPath, "target_modules", ex.Message, ex);
        }
        var shapes = ExpectedShapes(baseModel, plan, config);
        // PEFT's save_embedding_layers="auto" also writes a targeted embed_tokens' table (X.base_layer.weight); it is
        // optional, and loaded into the base as PEFT's load_state_dict does.
        foreach (var (name, module) in plan.Targets)
            if (module is Embedding table && header.Shapes.ContainsKey($"{Prefix}{name}.base_layer.weight"))
                shapes[$"{Prefix}{name}.base_layer.weight"] = table.QuantizedWeight is { } q
                    ? throw new InvalidDataFormatException(weightsPath, $"{Prefix}{name}.base_layer.weight",
                        "the adapter "
                        + $"carries the table itself, but the base's is stored {q.DType}; load the base with " +
                        "--embedding-dtype f32.")
                    : table.Weight.Shape;
        SafeTensors.CheckFits(shapes, header.Shapes, weightsPath);   // from the header: no data read yet
        // After the names and shapes, which say more precisely what is wrong when they do not fit either.
        if (header.Metadata.TryGetValue(ConfigHashKey, out string? configHash)
            && !string.Equals(configHash, Sha256(configBytes), StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataFormatException(weightsPath, ConfigHashKey,
                $"the weights were saved with another {AdapterConfigFile.FileName} (SHA-256 {configHash}, this one's " +
                $"is {Sha256(configBytes)}): " +
                "the folder mixes two saves (one interrupted between its two renames?) or the config was edited. " +
                "Save the adapter again.");
        SafeTensors.RequireFinite(stream, header);

        // Only PiSSA changes the base at initialisation; for the rest, draw the cheap default and overwrite it.
        var initConfig = config with { Init = config.Init.RewritesBase() ? config.Init : LoraInit.Default };
        var peft = into ?? LoraModel.GetPeftModel(baseModel, initConfig, generator, adapterName);
        if (into is not null) into.AddAdapter(adapterName, initConfig, generator);
        peft.SetConfig(adapterName, config);
        var live = peft.StateDict();
        foreach (var e in header.Entries)
            SafeTensors.ReadTensor(stream, header, e, live[InMemoryName(e.Name, adapterName)].Data);
        return peft;
    }

    /// <summary>File key → shape the adapter must have on this base model (PEFT's saved names).</summary>
    private static Dictionary<string, int[]> ExpectedShapes(Module baseModel, InjectionPlan plan, LoraConfig config)
    {
        var shapes = new Dictionary<string, int[]>(StringComparer.Ordinal);
        foreach (var (name, module) in plan.Targets)
        {
            if (module is not (Embedding or LoraEmbedding)) continue;
            Embedding table = module as Embedding ?? ((LoraEmbedding)module).BaseLayer;
            int rank = config.ForModule(name).Rank;
            shapes[$"{Prefix}{name}.lora_embedding_A"] = [rank, table.NumEmbeddings];
            shapes[$"{Prefix}{name}.lora_embedding_B"] = [table.EmbeddingDim, rank];
        }
        var targets = plan.Targets.Where(t => t.Value is Linear or LoraLinear)
            .ToDictionary(t => t.Key, t => t.Value as Linear ?? ((LoraLinear)t.Value).BaseLayer,
                StringComparer.Ordinal);
        foreach (var (name, linear) in targets)
        {
            int rank = config.ForModule(name).Rank;
            shapes[$"{Prefix}{name}.lora_A.weight"] = [rank, linear.InFeatures];
            shapes[$"{Prefix}{name}.lora_B.weight"] = [linear.OutFeatures, rank];
            if (config.UseDora) shapes[$"{Prefix}{name}.{MagnitudeKey}"] = [linear.OutFeatures];
            if (config.Bias == LoraBias.LoraOnly && linear.Bias is { } b)
                shapes[$"{Prefix}{name}.base_layer.bias"] = b.Shape;
        }
        if (config.Bias == LoraBias.All)
            foreach (var (name, p) in baseModel.NamedParameters())
            {
                if (!IsBias(name)) continue;
                int dot = name.LastIndexOf('.');
                string owner = dot < 0 ? "" : name[..dot];
                shapes[Prefix + (targets.ContainsKey(owner) ? owner + ".base_layer.bias" : name)] = p.Shape;
            }
        foreach (var (m, module) in plan.ModulesToSave)
            foreach (var (name, p) in module.NamedParameters(m)) shapes[Prefix + name] = p.Shape;
        return shapes;
    }

    /// <summary><c>base_model.model.X.lora_A.weight</c> → <c>X.lora_A.&lt;adapter&gt;.weight</c>; other keys lose the
    /// prefix.</summary>
    private static string InMemoryName(string key, string adapterName) =>
        AdapterKeyToInMemory(key[Prefix.Length..], adapterName);

    /// <summary>The last part of PEFT's key for DoRA's magnitude, <c>base_model.model.X.lora_magnitude_vector</c>:
    /// PEFT's <c>_get_adapter_state_dict</c> drops the <c>.weight</c> of
    /// <c>lora_magnitude_vector.&lt;adapter&gt;.weight</c> to keep the format of its older ParameterDict, and then the
    /// adapter name.</summary>
    internal const string MagnitudeKey = "lora_magnitude_vector";

    /// <summary>PEFT's <c>_get_adapter_state_dict</c>: an adapter parameter's name in its layer → the end of its file
    /// key, the adapter name dropped (<c>lora_A.&lt;adapter&gt;.weight</c> → <c>lora_A.weight</c>,
    /// <c>lora_embedding_A.&lt;adapter&gt;</c> → <c>lora_embedding_A</c>) and DoRA's <c>.weight</c> too
    /// (<see cref="MagnitudeKey"/>); the inverse of <see cref="AdapterKeyToInMemory"/>.</summary>
    private static string InMemoryToAdapterKey(string key)
    {
        string[] parts = key.Split('.');
        return parts[0] == MagnitudeKey ? MagnitudeKey : string.Join('.', parts.Where((_, i) => i != 1));
    }

    /// <summary>A file key without <c>base_model.model.</c> → the in-memory name: <c>X.lora_A.weight</c> →
    /// <c>X.lora_A.&lt;adapter&gt;.weight</c>, <c>X.lora_magnitude_vector</c> →
    /// <c>X.lora_magnitude_vector.&lt;adapter&gt;.weight</c>; other keys unchanged.</summary>
    internal static string AdapterKeyToInMemory(string name, string adapterName)
    {
        foreach (string factor in new[] { ".lora_A.weight", ".lora_B.weight" })
            if (name.EndsWith(factor, StringComparison.Ordinal))
                return name[..^".weight".Length] + "." + adapterName + ".weight";
        if (name.EndsWith("." + MagnitudeKey, StringComparison.Ordinal)) return name + "." + adapterName + ".weight";
        foreach (string factor in new[] { ".lora_embedding_A", ".lora_embedding_B" })
            if (name.EndsWith(factor, StringComparison.Ordinal)) return name + "." + adapterName;
        return name;
    }

    private static string Sha256(byte[] bytes) =>
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));

    private static bool IsBias(string name) => name == "bias" || name.EndsWith(".bias", StringComparison.Ordinal);
}
