using System.CommandLine;
using System.Globalization;
using LoRA.Managed.Recipes;

namespace LoRA.Managed.Cli.Commands;

/// <summary><c>lora lm-eval</c>: mean NLL and perplexity of a Hugging Face causal LM (optionally with an adapter) on a
/// UTF-8 text.</summary>
internal static class LmEvalCommand
{
    public static Command Create(CliContext context)
    {
        var model = HfArguments.ModelDir();
        var adapter = HfArguments.AdapterDir();
        var baseDType = HfArguments.BaseDType();
        var noQuantCache = HfArguments.NoQuantCache();
        var embeddingDType = HfArguments.EmbeddingDType();
        var data = CommonOptions.NonEmptyPath(new Option<string>("--data") { Description = "UTF-8 text to score.",
            Required = true, HelpName = "FILE" });
        var window = CommonOptions.Int("--context", 0, 0,
            "Window length N: the text is scored in consecutive windows of at most N tokens (0: the " +
            "model's maximum positions).");
        var command = new Command("lm-eval",
            "Score a text with a Hugging Face causal LM: predicted tokens, mean NLL (nats/token) and perplexity.")
        {
            model, adapter, baseDType, embeddingDType, noQuantCache, data, window,
        };
        RecipeCommand.SetAction(command, parse =>
        {
            var (lm, tokenizer) = HfArguments.Load(parse.GetValue(model)!, parse.GetValue(adapter),
                parse.GetValue(baseDType), parse.GetValue(embeddingDType), parse.GetValue(noQuantCache), context.Error);
            LmEvaluation.Result r = LmEvaluation.Run(lm, tokenizer, File.ReadAllText(parse.GetValue(data)!),
                parse.GetValue(window));
            context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Tokens:N0} predicted tokens in windows of {r.Context}: mean NLL {r.MeanNll:F4} nats/token, " +
                $"perplexity {r.Perplexity:F3}"));
            return new Dictionary<string, object?> { ["tokens"] = r.Tokens, ["mean_nll"] = r.MeanNll,
                ["perplexity"] = r.Perplexity, ["context"] = r.Context };
        });
        return command;
    }
}
