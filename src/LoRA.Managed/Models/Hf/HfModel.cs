using LoRA.Managed.IO;
using LoRA.Managed.Kernels;
using LoRA.Managed.Nn;

namespace LoRA.Managed.Models.Hf;

/// <summary>
/// Loads a Hugging Face causal-LM folder as <c>save_pretrained</c> writes it
/// (<c>AutoModelForCausalLM.from_pretrained</c>): <c>config.json</c>, <c>model.safetensors</c> or sharded
/// <c>model.safetensors.index.json</c> (F32, F16, BF16 or F64, converted to float32 tensor by tensor), and
/// <c>generation_config.json</c> for the EOS ids when present.
/// </summary>
public static class HfModel
{
    /// <summary>
    /// Reads the folder into a <see cref="Gpt2LmHeadModel"/> or <see cref="LlamaForCausalLm"/>, in evaluation mode.
    /// Everything (config fields, every tensor's presence and shape) is checked before any weight is read.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">config.json or the weights are missing.</exception>
    /// <exception cref="InvalidDataFormatException">A file is malformed, a field unsupported, or a tensor missing,
    /// mis-shaped or unexpected (named with its file).</exception>
    public static CausalLm Load(string directory) => Load(directory, BaseDType.F32);

    /// <summary>
    /// As <see cref="Load(string)"/>, then stores every Linear's weight but the LM head in
    /// <paramref name="baseDType"/> (<see cref="Linear.QuantizeWeight(BaseDType)"/>; bitsandbytes' default
    /// <c>llm_int8_skip_modules = ["lm_head"]</c>), and the embeddings and LM head in
    /// <see cref="DefaultEmbeddingDType"/> of it (bf16 under int8 and nf4, as bitsandbytes leaves them in the model's
    /// <c>torch_dtype</c>), with the default <see cref="HfLoadOptions"/> (a quantised-weight cache is read or made;
    /// see <see cref="Load(string, HfLoadOptions)"/>).
    /// </summary>
    public static CausalLm Load(string directory, BaseDType baseDType) =>
        Load(directory, new HfLoadOptions { BaseDType = baseDType });

    /// <summary>
    /// As <see cref="Load(string, BaseDType)"/> with the token (and position) embeddings and the LM head, tied or
    /// not, stored in <paramref name="embeddingDType"/> (null: <see cref="DefaultEmbeddingDType"/>).
    /// </summary>
    public static CausalLm Load(string directory, BaseDType baseDType, BaseDType? embeddingDType) =>
        Load(directory, new HfLoadOptions { BaseDType = baseDType, EmbeddingDType = embeddingDType });

    /// <summary>
    /// The embeddings' and LM head's storage for a base in <paramref name="baseDType"/>: bf16 under int8 and nf4
    /// (what a bitsandbytes model loaded with <c>torch_dtype=torch.bfloat16</c> keeps them in), else the base's own.
    /// </summary>
    public static BaseDType DefaultEmbeddingDType(BaseDType baseDType) =>
        baseDType is BaseDType.Int8 or BaseDType.Nf4 ? BaseDType.Bf16 : baseDType;

    /// <summary>
    /// As <see cref="Load(string)"/>, then stores every Linear's weight but the LM head in
    /// <see cref="HfLoadOptions.BaseDType"/> and the tables and head in <see cref="HfLoadOptions.EmbeddingDType"/>.
    /// Norms and biases stay float32, as PEFT's <c>prepare_model_for_kbit_training</c> leaves them. The file is read
    /// in float32 one tensor at a time, so the float32 weights of the quantised layers never exist together. The
    /// fingerprint of the float32 weights is taken as they pass (<see cref="CausalLm.Float32Checksum"/>), so adapters
    /// move between this base and the float32 one. Unless <see cref="HfLoadOptions.QuantizedCache"/> is off, the
    /// quantised weights then go to a cache file (<see cref="QuantizedWeightCache"/>), and the next load with the
    /// same files and formats reads them from there instead of reading and quantising their float32 tensors.
    /// </summary>
    public static CausalLm Load(string directory, HfLoadOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"{directory}: the model folder does not exist.");
        string configPath = Path.Combine(directory, HfConfig.FileName);
        if (!File.Exists(configPath))
            throw new FileNotFoundException($"{configPath}: the file does not exist (not a Hugging Face model " +
                "folder?).", configPath);
        HfConfig config = HfConfig.Read(configPath);
        string generationPath = Path.Combine(directory, GenerationConfig.FileName);
        IReadOnlyList<int> eos = config.EosTokenIds;
        if (File.Exists(generationPath)
            && GenerationConfig.Read(generationPath) is { EosTokenIds.Count: > 0 } generation)
            eos = generation.EosTokenIds;

        using HfWeights weights = HfWeights.Open(directory);
        BaseDType tables = options.EmbeddingDType ?? DefaultEmbeddingDType(options.BaseDType);
        CausalLm model = QuantizedLoad.Create(config);
        var load = new QuantizedLoad(model, config, weights, options.BaseDType, tables);
        if (load.Targets.Count == 0 || !options.QuantizedCache)
            load.QuantizeFromFile();
        else
        {
            var key = QuantizedCacheKey.Create(directory, weights.FilePaths);
            string path = options.QuantizedCachePath
                ?? QuantizedCacheKey.PathFor(directory, options.BaseDType, tables, options.QuantizedCacheRoot);
            if (!load.TryFromCache(path, key, options.Warning, out bool replace))
            {
                load.QuantizeFromFile();
                if (replace) load.WriteCache(path, key, options.Warning);
            }
        }
        model.EosTokenIds = eos;
        model.SourceDirectory = Path.GetFullPath(directory);
        model.Eval();
        return model;
    }
}
