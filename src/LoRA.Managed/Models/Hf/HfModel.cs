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
    /// <c>torch_dtype</c>). Norms and biases stay float32, as PEFT's <c>prepare_model_for_kbit_training</c> leaves
    /// them. Weights are quantised on load, one tensor at a time.
    /// </summary>
    public static CausalLm Load(string directory, BaseDType baseDType) => Load(directory, baseDType, null);

    /// <summary>
    /// As <see cref="Load(string, BaseDType)"/> with the token (and position) embeddings and the LM head, tied or
    /// not, stored in <paramref name="embeddingDType"/> (null: <see cref="DefaultEmbeddingDType"/>).
    /// </summary>
    public static CausalLm Load(string directory, BaseDType baseDType, BaseDType? embeddingDType) =>
        LoadFloat32(directory, baseDType, embeddingDType ?? DefaultEmbeddingDType(baseDType));

    /// <summary>
    /// The embeddings' and LM head's storage for a base in <paramref name="baseDType"/>: bf16 under int8 and nf4
    /// (what a bitsandbytes model loaded with <c>torch_dtype=torch.bfloat16</c> keeps them in), else the base's own.
    /// </summary>
    public static BaseDType DefaultEmbeddingDType(BaseDType baseDType) =>
        baseDType is BaseDType.Int8 or BaseDType.Nf4 ? BaseDType.Bf16 : baseDType;

    private static CausalLm LoadFloat32(string directory, BaseDType baseDType, BaseDType embeddingDType)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"{directory}: the model folder does not exist.");
        string configPath = Path.Combine(directory, HfConfig.FileName);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"{configPath}: the file does not exist (not a Hugging Face model folder?).", configPath);
        HfConfig config = HfConfig.Read(configPath);
        string generationPath = Path.Combine(directory, GenerationConfig.FileName);
        IReadOnlyList<int> eos = config.EosTokenIds;
        if (File.Exists(generationPath) && GenerationConfig.Read(generationPath) is { EosTokenIds.Count: > 0 } generation)
            eos = generation.EosTokenIds;

        using HfWeights weights = HfWeights.Open(directory);
        CausalLm model = config.Architecture == HfArchitecture.Gpt2
            ? new Gpt2LmHeadModel(config) : new LlamaForCausalLm(config);
        // Quantised on load, one weight at a time through a scratch, the Linears in baseDType and the tables and LM head
        // (which bitsandbytes skips, llm_int8_skip_modules) in embeddingDType: the model's own float32 arrays for those
        // weights are never written, so the operating system never backs them, and each is dropped when quantised.
        var divert = new Dictionary<Parameter, HfWeights.TensorSink>();
        foreach (var (name, module) in model.NamedModules())
            if (module is IQuantizableWeight q)
            {
                bool head = module is Embedding
                    || name == "lm_head" || name.EndsWith(".lm_head", StringComparison.Ordinal);
                BaseDType dtype = head ? embeddingDType : baseDType;
                if (dtype != BaseDType.F32) divert[q.Weight] = w => q.QuantizeWeight(dtype, w);
            }
        if (config.Architecture == HfArchitecture.Gpt2)
        {
            // GPT-2 files carry the causal-mask buffers attn.bias / attn.masked_bias and, rarely, the tied head.
            weights.LoadInto(model, "transformer.", n =>
                n.EndsWith(".attn.bias", StringComparison.Ordinal) || n.EndsWith(".attn.masked_bias", StringComparison.Ordinal) || n == "lm_head.weight", divert);
        }
        else
        {
            weights.LoadInto(model, "model.", n =>
                n.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal) || (config.TieWordEmbeddings && n == "lm_head.weight"), divert);
        }
        model.EosTokenIds = eos;
        model.SourceDirectory = Path.GetFullPath(directory);
        model.Eval();
        return model;
    }
}
