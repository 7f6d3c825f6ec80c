using System.CommandLine;
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
            Description = "A Hugging Face model folder (config.json, model.safetensors or its sharded index, tokenizer files): GPT-2, Llama, Qwen2 or Mistral.",
            Required = true, HelpName = "DIR",
        });

    public static Option<string?> AdapterDir() =>
        CommonOptions.NonEmptyPath(new Option<string?>("--adapter") { Description = "A PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors).", HelpName = "DIR" });

    /// <summary>The folder's model (with the adapter when given) and its tokenizer.</summary>
    public static (CausalLm Model, HfTokenizer Tokenizer) Load(string modelDir, string? adapterDir) =>
        (HfLmLoading.Load(modelDir, adapterDir), HfTokenizer.FromFolder(modelDir));
}
