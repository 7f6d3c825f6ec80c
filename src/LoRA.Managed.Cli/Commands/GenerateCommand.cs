using System.CommandLine;
using System.Globalization;
using LoRA.Managed.Models;
using LoRA.Managed.Recipes;

namespace LoRA.Managed.Cli.Commands;

/// <summary><c>lora generate</c>: continue a prompt with a Hugging Face causal LM (KV cache, greedy or sampled),
/// streaming the text.</summary>
internal static class GenerateCommand
{
    public static Command Create(CliContext context)
    {
        var model = HfArguments.ModelDir();
        var adapter = HfArguments.AdapterDir();
        var baseDType = HfArguments.BaseDType();
        var noQuantCache = HfArguments.NoQuantCache();
        var embeddingDType = HfArguments.EmbeddingDType();
        var prompt = new Option<string>("--prompt") { Description = "The text to continue.", Required = true,
            HelpName = "TEXT" };
        var maxNew = CommonOptions.Int("--max-new-tokens", 64, 0,
            "Tokens to generate at most (generation also stops at EOS).");
        var temperature = new Option<float>("--temperature") { Description = "Softmax temperature; 0 is greedy " +
            "decoding.", DefaultValueFactory = _ => 0f };
        var topK = CommonOptions.Int("--top-k", 0, 0, "Sample among the k most likely tokens (0: all).");
        var topP = new Option<float>("--top-p") { Description = "Sample among the most likely tokens whose " +
            "probability reaches p, in (0, 1].", DefaultValueFactory = _ => 1f };
        var seed = CommonOptions.Seed();
        var command = new Command("generate",
            "Continue a prompt with a Hugging Face causal LM, printing the text as it is generated.")
        {
            model, adapter, baseDType, embeddingDType, noQuantCache, prompt, maxNew, temperature, topK, topP, seed,
        };
        RecipeCommand.SetAction(command, parse =>
        {
            var (lm, tokenizer) = HfArguments.Load(parse.GetValue(model)!, parse.GetValue(adapter),
                parse.GetValue(baseDType), parse.GetValue(embeddingDType), parse.GetValue(noQuantCache), context.Error);
            var settings = new GenerationSettings
            {
                MaxNewTokens = parse.GetValue(maxNew), Temperature = parse.GetValue(temperature),
                TopK = parse.GetValue(topK),
                TopP = parse.GetValue(topP), Seed = parse.GetValue(seed),
            };
            settings.Validate();
            string text = parse.GetValue(prompt)!;
            context.Output.Write(text);
            var r = LmGenerationRecipe.Run(lm, tokenizer, text, settings, piece =>
            {
                context.Output.Write(piece);
                context.Output.Flush();
            });
            context.Output.WriteLine();
            context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"[{r.PromptIds.Length} prompt tokens, {r.NewIds.Length} new]"));
            return new Dictionary<string, object?> { ["prompt_ids"] = r.PromptIds, ["new_ids"] = r.NewIds,
                ["text"] = r.Text };
        });
        return command;
    }
}
