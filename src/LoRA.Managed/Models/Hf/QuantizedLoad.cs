using LoRA.Managed.Kernels;
using LoRA.Managed.Nn;

namespace LoRA.Managed.Models.Hf;

/// <summary>
/// One load of a Hugging Face folder into a fresh model, with its weights in a <see cref="BaseDType"/>: which weights
/// are quantised (<see cref="Targets"/>), and the two ways they arrive: from the file, quantised tensor by tensor while
/// the float32 fingerprint is taken, or from a <see cref="QuantizedWeightCache"/> without reading them.
/// </summary>
internal sealed class QuantizedLoad
{
    private readonly HfConfig _config;
    private readonly HfWeights _weights;
    private readonly BaseDType _dtype;

    /// <summary>Prepares the load of <paramref name="weights"/> into <paramref name="model"/> (fresh, from
    /// <see cref="Create"/>): the Linear weights in <paramref name="dtype"/>, the embedding tables and the LM head in
    /// <paramref name="tablesDType"/>.</summary>
    public QuantizedLoad(CausalLm model, HfConfig config, HfWeights weights, BaseDType dtype, BaseDType tablesDType)
    {
        Model = model;
        _config = config;
        _weights = weights;
        _dtype = dtype;
        // Every quantisable weight, by its parameter's state_dict name: the Linears in the base dtype, the tables and
        // the LM head, tied or not (which bitsandbytes skips, llm_int8_skip_modules), in the tables' dtype.
        var names = new Dictionary<Parameter, string>(ReferenceEqualityComparer.Instance);
        foreach (var (name, p) in model.NamedParameters()) names.TryAdd(p, name);
        foreach (var (name, module) in model.NamedModules())
            if (module is IQuantizableWeight q)
            {
                bool table = module is Embedding
                    || name == "lm_head" || name.EndsWith(".lm_head", StringComparison.Ordinal);
                BaseDType target = table ? tablesDType : dtype;
                if (target != BaseDType.F32) Targets.Add((names[q.Weight], (int[])q.Weight.Shape.Clone(), q, target));
            }
    }

    /// <summary>The model being loaded.</summary>
    public CausalLm Model { get; }

    /// <summary>The weights stored quantised: parameter name, float32 shape, module, storage.</summary>
    public List<(string Name, int[] Shape, IQuantizableWeight Module, BaseDType DType)> Targets { get; } = [];

    /// <summary>A model of <paramref name="config"/>'s architecture with zero weights.</summary>
    public static CausalLm Create(HfConfig config) =>
        config.Architecture == HfArchitecture.Gpt2 ? new Gpt2LmHeadModel(config) : new LlamaForCausalLm(config);

    /// <summary>
    /// Reads every tensor from the file. The quantised weights go through one scratch into their module's
    /// <see cref="IQuantizableWeight.QuantizeWeight"/>: the model's own float32 arrays for them are never written, so
    /// the operating system never backs them with memory. When any are quantised, the float32 fingerprint is taken on
    /// the way (<see cref="CausalLm.Float32Checksum"/>).
    /// </summary>
    public void QuantizeFromFile()
    {
        var divert = new Dictionary<Parameter, HfWeights.TensorSink>();
        foreach (var (_, _, q, dtype) in Targets)
        {
            var module = q;
            divert[q.Weight] = w => module.QuantizeWeight(dtype, w);
        }
        using var checksum = Targets.Count > 0 ? new ParameterChecksum() : null;
        LoadInto(divert, null, checksum);
        if (checksum is not null) Model.Float32Checksum = checksum.Finish();
    }

    /// <summary>
    /// Installs the quantised weights from the cache at <paramref name="path"/> and reads only the other tensors from
    /// the file. False when there is no usable cache: none (silently), or one that is damaged, of another format or
    /// made from other files (one line to <paramref name="warning"/>). Everything is checked before the model changes,
    /// so after a false return it is as it was; <paramref name="replace"/> says whether a new cache may be written
    /// at the path (not over an empty file, which may be a FIFO or device that <see cref="IO.AtomicFile"/> refuses).
    /// </summary>
    public bool TryFromCache(string path, QuantizedCacheKey key, Action<string>? warning, out bool replace)
    {
        replace = true;
        if (!File.Exists(path)) return false;
        if (new FileInfo(path).Length == 0)
        {
            replace = false;
            warning?.Invoke($"warning: {path}: empty or not a regular file; not used, and not replaced (remove it)");
            return false;
        }
        QuantizedWeightCache.Contents cache;
        try { cache = QuantizedWeightCache.Read(path); }
        catch (QuantizedWeightCache.BadCacheException e) { return Reject(path, e.Message, warning); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Reject(path, $"unreadable ({e.Message})", warning);
        }
        if (cache.DType != _dtype) return Reject(path, $"made for {cache.DType}, loading {_dtype}", warning);
        if (cache.Key.Difference(key) is { } changed) return Reject(path, $"stale: {changed}", warning);
        if (cache.Entries.Count != Targets.Count)
            return Reject(path, $"stale: {cache.Entries.Count} quantised weights, the model has {Targets.Count}",
                warning);
        for (int i = 0; i < Targets.Count; i++)
        {
            var (name, shape, module, dtype) = Targets[i];
            var e = cache.Entries[i];
            if (e.Name != name || !e.Shape.AsSpan().SequenceEqual(shape) || e.Weight.DType != dtype)
                return Reject(path,
                    $"stale: the cache holds {e.Name} {Tensors.Shapes.Format(e.Shape)} {e.Weight.DType} "
                    + $"where the model quantises {name} {Tensors.Shapes.Format(shape)} {dtype}", warning);
            if ((e.Weight.Rows, e.Weight.Columns) != module.QuantizedShape)
                return Reject(path, $"malformed ({e.Name} is stored [{e.Weight.Rows}, {e.Weight.Columns}], the model "
                    + $"quantises it as [{module.QuantizedShape.Rows}, {module.QuantizedShape.Columns}])", warning);
        }
        LoadInto(null, Targets.Select(t => t.Module.Weight).ToHashSet(), null);
        for (int i = 0; i < Targets.Count; i++) Targets[i].Module.UseQuantizedWeight(cache.Entries[i].Weight);
        Model.Float32Checksum = cache.Float32Checksum;
        return true;
    }

    /// <summary>Writes the quantised weights to the cache at <paramref name="path"/>; a failure is one line to
    /// <paramref name="warning"/>, not an error (the model is loaded either way).</summary>
    public void WriteCache(string path, QuantizedCacheKey key, Action<string>? warning)
    {
        var entries = Targets
            .Select(t => new QuantizedWeightCache.Entry(t.Name, t.Shape, t.Module.QuantizedWeight!)).ToList();
        try
        {
            var contents = new QuantizedWeightCache.Contents(_dtype, Model.Float32Checksum!, key, entries);
            QuantizedWeightCache.Write(path, contents);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            warning?.Invoke($"warning: {path}: the quantised-weight cache was not written ({e.Message})");
        }
    }

    private static bool Reject(string path, string reason, Action<string>? warning)
    {
        warning?.Invoke($"warning: {path}: {reason}; rebuilding");
        return false;
    }

    private void LoadInto(IReadOnlyDictionary<Parameter, HfWeights.TensorSink>? divert,
        IReadOnlySet<Parameter>? provided, ParameterChecksum? checksum)
    {
        if (_config.Architecture == HfArchitecture.Gpt2)
        {
            // GPT-2 files carry the causal-mask buffers attn.bias / attn.masked_bias and, rarely, the tied head.
            _weights.LoadInto(Model, "transformer.", n =>
                n.EndsWith(".attn.bias", StringComparison.Ordinal)
                || n.EndsWith(".attn.masked_bias", StringComparison.Ordinal)
                || n == "lm_head.weight", divert, provided, checksum);
        }
        else
        {
            _weights.LoadInto(Model, "model.", n =>
                n.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal)
                || (_config.TieWordEmbeddings && n == "lm_head.weight"),
                divert, provided, checksum);
        }
    }
}
