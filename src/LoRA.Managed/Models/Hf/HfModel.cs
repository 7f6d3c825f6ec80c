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
    /// <paramref name="baseDType"/> (<see cref="Linear.QuantizeWeight"/>; bitsandbytes' default
    /// <c>llm_int8_skip_modules = ["lm_head"]</c>). Embeddings, norms and biases stay float32, as PEFT's
    /// <c>prepare_model_for_kbit_training</c> leaves them. The file is read in float32 first, so the peak
    /// memory of loading is still the float32 model's; the float32 weights are released afterwards.
    /// </summary>
    public static CausalLm Load(string directory, BaseDType baseDType)
    {
        CausalLm model = LoadFloat32(directory);
        if (baseDType == BaseDType.F32) return model;
        foreach (var (name, module) in model.NamedModules().ToList())
            if (module is Linear linear && name != "lm_head" && !name.EndsWith(".lm_head", StringComparison.Ordinal))
                linear.QuantizeWeight(baseDType);
        GC.Collect(); // hand the float32 weights back now rather than at the first training step
        return model;
    }

    private static CausalLm LoadFloat32(string directory)
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
        CausalLm model;
        if (config.Architecture == HfArchitecture.Gpt2)
        {
            model = new Gpt2LmHeadModel(config);
            // GPT-2 files carry the causal-mask buffers attn.bias / attn.masked_bias and, rarely, the tied head.
            weights.LoadInto(model, "transformer.", n =>
                n.EndsWith(".attn.bias", StringComparison.Ordinal) || n.EndsWith(".attn.masked_bias", StringComparison.Ordinal) || n == "lm_head.weight");
        }
        else
        {
            model = new LlamaForCausalLm(config);
            weights.LoadInto(model, "model.", n =>
                n.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal) || (config.TieWordEmbeddings && n == "lm_head.weight"));
        }
        model.EosTokenIds = eos;
        model.SourceDirectory = Path.GetFullPath(directory);
        model.Eval();
        return model;
    }
}
