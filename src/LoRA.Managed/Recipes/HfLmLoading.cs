using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;

namespace LoRA.Managed.Recipes;

/// <summary>Loads a Hugging Face model folder and, optionally, a PEFT adapter onto it (for lm-eval and
/// generate).</summary>
public static class HfLmLoading
{
    /// <summary>The model of <paramref name="modelDir"/>, with the adapter of <paramref name="adapterDir"/> applied
    /// when given.</summary>
    /// <exception cref="IO.InvalidDataFormatException">A file of either folder is malformed or does not fit
    /// (named).</exception>
    public static CausalLm Load(string modelDir, string? adapterDir) => Load(modelDir, adapterDir, new HfLoadOptions());

    /// <summary>As <see cref="Load(string, string?)"/> with the base loaded as <paramref name="options"/> say
    /// (storage, quantised-weight cache; see <see cref="HfModel.Load(string, HfLoadOptions)"/>).</summary>
    public static CausalLm Load(string modelDir, string? adapterDir, HfLoadOptions options)
    {
        CausalLm model = HfModel.Load(modelDir, options);
        if (adapterDir is not null) PeftModel.FromPretrained(model, adapterDir);
        model.Eval();
        return model;
    }
}
