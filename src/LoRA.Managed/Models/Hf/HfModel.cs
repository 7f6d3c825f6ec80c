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
    /// <c>llm_int8_skip_modules = ["lm_head"]</c>). Embeddings, norms and biases stay float32, as PEFT's
    /// <c>prepare_model_for_kbit_training</c> leaves them. The file is read in float32 first, so the peak
    /// memory of loading is still the float32 model's; the float32 weights are released afterwards.
    /// </summary>
    public static CausalLm Load(string directory, BaseDType baseDType)
    {
        return LoadFloat32(directory, baseDType);
    }

    private static CausalLm LoadFloat32(string directory, BaseDType baseDType)
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
        // Quantised on load, one weight at a time through a scratch (bitsandbytes keeps lm_head, its
        // llm_int8_skip_modules default): the model's own float32 arrays for those weights are never written, so the
        // operating system never backs them with memory, and they are dropped as each layer is quantised.
        var divert = new Dictionary<Parameter, HfWeights.TensorSink>();
        if (baseDType != BaseDType.F32)
            foreach (var (name, module) in model.NamedModules())
                if (module is IQuantizableWeight q && name != "lm_head" && !name.EndsWith(".lm_head", StringComparison.Ordinal))
                    divert[q.Weight] = w => q.QuantizeWeight(baseDType, w);
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
