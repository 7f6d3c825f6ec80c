using System.CommandLine;
using LoRA.Managed.Kernels;
using LoRA.Managed.Models;
using LoRA.Managed.Recipes;
using LoRA.Managed.Text.Tokenizers;

namespace LoRA.Managed.Cli;

/// <summary>The <c>--model DIR</c> / <c>--adapter DIR</c> options of the Hugging Face language-model commands, and
/// loading them.</summary>
internal static class HfArguments
{
    public static Option<string> ModelDir() =>
        CommonOptions.NonEmptyPath(new Option<string>("--model")
        {
            Description = "A Hugging Face model folder (config.json, model.safetensors or its sharded index, " +
                "tokenizer files): GPT-2, Llama, Qwen2 or Mistral.",
            Required = true, HelpName = "DIR",
        });

    public static Option<string?> AdapterDir() =>
        CommonOptions.NonEmptyPath(new Option<string?>("--adapter") { Description = "A PEFT LoRA adapter folder " +
            "(adapter_config.json + adapter_model.safetensors).", HelpName = "DIR" });

    /// <summary>The <c>--base-dtype</c> option: how the frozen base's linear weights are stored (issue 16).</summary>
    public static Option<BaseDType> BaseDType() => new("--base-dtype")
    {
        Description = "Storage of the base model's linear weights: f32 (default), bf16, f16, int8 (per output row) " +
            "or nf4 (QLoRA, blocks of 64, double-quantised scales). Norms, biases and LoRA stay f32; embeddings and " +
            "the LM head follow --embedding-dtype.",
        HelpName = "f32|bf16|f16|int8|nf4",
        DefaultValueFactory = _ => Kernels.BaseDType.F32,
        CustomParser = result => ParseDType(result, "--base-dtype") ?? Kernels.BaseDType.F32,
    };

    /// <summary>The <c>--embedding-dtype</c> option: how the frozen embeddings and LM head are stored; unset, they
    /// follow <see cref="Models.Hf.HfModel.DefaultEmbeddingDType"/>.</summary>
    public static Option<BaseDType?> EmbeddingDType() => new("--embedding-dtype")
    {
        Description = "Storage of the frozen embeddings and LM head (tied or not): f32, bf16, f16, int8 or nf4. " +
            "Default: bf16 under --base-dtype int8/nf4 (as bitsandbytes keeps them in the model's torch_dtype), " +
            "else the --base-dtype.",
        HelpName = "f32|bf16|f16|int8|nf4",
        CustomParser = result => ParseDType(result, "--embedding-dtype"),
    };

    private static BaseDType? ParseDType(System.CommandLine.Parsing.ArgumentResult result, string option)
    {
        string text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        switch (text.ToLowerInvariant())
        {
            case "f32": return Kernels.BaseDType.F32;
            case "bf16": return Kernels.BaseDType.Bf16;
            case "f16": return Kernels.BaseDType.F16;
            case "int8": return Kernels.BaseDType.Int8;
            case "nf4": return Kernels.BaseDType.Nf4;
        }
        result.AddError($"{option}: '{text}' is not one of f32, bf16, f16, int8, nf4.");
        return null;
    }

    /// <summary>The <c>--no-quant-cache</c> switch: neither read nor write the quantised-weight cache.</summary>
    public static Option<bool> NoQuantCache() => new("--no-quant-cache")
    {
        Description = "With --base-dtype other than f32: quantise from the model's files and keep no copy. By " +
            "default the quantised weights are cached in <model>/.lora-managed (or under " +
            "~/.cache/lora-managed/quantized when the folder is read-only) and reused while the files are unchanged.",
    };

    /// <summary>The folder's model (with the adapter when given) and its tokenizer; cache warnings go to
    /// <paramref name="error"/>.</summary>
    public static (CausalLm Model, HfTokenizer Tokenizer) Load(string modelDir, string? adapterDir, BaseDType baseDType,
        BaseDType? embeddingDType, bool noQuantCache, TextWriter error) =>
        (HfLmLoading.Load(modelDir, adapterDir, LoadOptions(baseDType, embeddingDType, noQuantCache, error)),
            HfTokenizer.FromFolder(modelDir));

    /// <summary>The library's load options for <c>--base-dtype</c>, <c>--embedding-dtype</c> and
    /// <c>--no-quant-cache</c>.</summary>
    private static Models.Hf.HfLoadOptions LoadOptions(BaseDType baseDType, BaseDType? embeddingDType,
        bool noQuantCache, TextWriter error) =>
        new()
        {
            BaseDType = baseDType, EmbeddingDType = embeddingDType, QuantizedCache = !noQuantCache,
            Warning = error.WriteLine,
        };
}
