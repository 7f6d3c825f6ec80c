using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Recipes;
using LoRA.Managed.Tensors;
using LoRA.Managed.Text.Tokenizers;

namespace LoRA.Managed.Samples;

/// <summary>
/// A Hugging Face causal LM from a folder: load, tokenize, score, generate, wrap with LoRA, fine-tune a few steps,
/// save a PEFT adapter. The folder is <c>$LORA_MANAGED_HF_MODEL</c>, else the repository's sibling
/// <c>shared/models/stories260K</c>.
/// </summary>
public static class HfLmSample
{
    /// <summary>Prints the score, a greedy continuation and the adapter's files.</summary>
    public static void Run(TextWriter o)
    {
        string dir = Environment.GetEnvironmentVariable("LORA_MANAGED_HF_MODEL") ?? SharedModel();
        CausalLm model = HfModel.Load(dir);                           // config.json + model.safetensors
        var tokenizer = HfTokenizer.FromFolder(dir);                  // tokenizer.json + tokenizer_config.json
        int[] ids = tokenizer.Encode("Once upon a time, there was a little girl named Lily.");
        ScoreResult score = model.Score(ids, context: 256);           // mean NLL over windows of ≤ 256 tokens
        o.WriteLine($"{score.Tokens} tokens: mean NLL {score.MeanNll:F3}, perplexity {score.Perplexity:F2}");
        int[] prompt = tokenizer.Encode("Once upon a time");
        int[] next = model.Generate(prompt, new GenerationSettings { MaxNewTokens = 26 });   // greedy, KV cache
        o.WriteLine(tokenizer.Decode([.. prompt, .. next], skipSpecialTokens: true));
        PeftModel peft = LoraModel.GetPeftModel(model,
            new LoraConfig { Rank = 4, Alpha = 8, TargetModules = ["q_proj", "v_proj"] },
            new TorchGenerator(0));
        o.WriteLine(peft.TrainableParameterSummary());
        // ... train with Trainer + LanguageModelTask / CompletionTask (see LmFinetuning), then:
        string adapter = Path.Combine(Path.GetTempPath(), "lora-managed-hf-sample");
        // PEFT's adapter_config.json + adapter_model.safetensors
        peft.SaveAdapter(adapter);
        o.WriteLine(string.Join(", ", Directory.GetFiles(adapter).Select(Path.GetFileName).Order()));
    }

    private static string SharedModel()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "shared", "models", "stories260K");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException("Set LORA_MANAGED_HF_MODEL to a Hugging Face model folder (no sibling " +
            "shared/models/stories260K found).");
    }
}
