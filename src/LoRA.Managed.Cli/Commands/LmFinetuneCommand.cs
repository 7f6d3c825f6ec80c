using System.CommandLine;
using System.Globalization;
using LoRA.Managed.Recipes;
using LoRA.Managed.Text.Tokenizers;

namespace LoRA.Managed.Cli.Commands;

/// <summary>
/// <c>lora lm-finetune</c>: LoRA fine-tuning of a Hugging Face causal LM on a .txt (packed blocks) or .jsonl
/// (text, or prompt/completion with the loss on the completion) through the one training loop; saves a PEFT adapter.
/// </summary>
internal static class LmFinetuneCommand
{
    public static Command Create(CliContext context)
    {
        var defaults = new LmFinetuning.Options { ModelDir = "", DataFile = "", OutDir = "" };
        var model = HfArguments.ModelDir();
        var baseDType = HfArguments.BaseDType();
        var noQuantCache = HfArguments.NoQuantCache();
        var embeddingDType = HfArguments.EmbeddingDType();
        var checkpointing = new Option<bool>("--gradient-checkpointing")
        {
            Description = "Recompute each block's activations in backward instead of keeping them (less memory, " +
                "about a third more compute), as Hugging Face's gradient_checkpointing_enable().",
        };
        var data = CommonOptions.NonEmptyPath(
            new Option<string>("--data") { Description = ".txt (packed into context-length blocks) or .jsonl " +
                "({\"text\"} or {\"prompt\", \"completion\"} lines).", Required = true, HelpName = "FILE" });
        var targets = new Option<string>("--targets") { Description = "Comma-separated module names to adapt, as " +
            "PEFT's target_modules (e.g. q_proj,v_proj; c_attn for GPT-2).",
            DefaultValueFactory = _ => "q_proj,v_proj" };
        var exclude = new Option<string?>("--exclude") { Description = "Comma-separated modules never to adapt, as " +
            "PEFT's exclude_modules (a name or a suffix after a dot).", HelpName = "modules" };
        var layers = new Option<string?>("--layers") { Description = "Comma-separated layer indices to adapt (PEFT's " +
            "layers_to_transform, e.g. 0,1); default: all.", HelpName = "i,j" };
        var rank = CommonOptions.Int("--rank", defaults.Rank, 1, "LoRA rank r.");
        var alpha = CommonOptions.PositiveDouble("--alpha", defaults.Alpha, "LoRA alpha (scale alpha/r, as PEFT).");
        var dropout = new Option<float>("--dropout") { Description = "LoRA dropout on the adapter input, in [0, 1).",
            DefaultValueFactory = _ => 0f };
        var useDora = new Option<bool>("--use-dora") { Description = "DoRA (PEFT's use_dora): a trained magnitude " +
            "per output feature over the norm of W + s·B·A." };
        var steps = new Option<int?>("--steps") { Description = "Optimiser steps (overrides --epochs).",
            HelpName = "S" };
        var epochs = CommonOptions.Int("--epochs", defaults.Epochs, 1, "Epochs over the data.");
        var lr = CommonOptions.PositiveDouble("--lr", defaults.LearningRate,
            "Peak AdamW learning rate (3% warm-up, cosine decay).");
        var batch = CommonOptions.Int("--batch-size", defaults.BatchSize, 1, "Sequences per micro-batch.");
        var accum = CommonOptions.Int("--grad-accum", defaults.GradAccum, 1, "Micro-batches per optimiser step.");
        var window = new Option<int?>("--context") { Description = "Tokens per block or row (default: the model's " +
            "maximum, at most 512).", HelpName = "N" };
        var seed = CommonOptions.Seed();
        var output = ModelArguments.Out("Folder for the PEFT adapter (adapter_config.json + " +
            "adapter_model.safetensors).");
        var checkpoints = new Option<string?>("--checkpoint-dir") { Description = "Write checkpoints here (every " +
            "--save-steps, and on Ctrl+C).", HelpName = "DIR" };
        var saveSteps = CommonOptions.Int("--save-steps", 0, 0,
            "Checkpoint every N optimiser steps (0: only on Ctrl+C).");
        var resume = new Option<string?>("--resume") { Description = "Continue from this checkpoint folder.",
            HelpName = "DIR" };
        var command = new Command("lm-finetune",
            "LoRA fine-tuning of a Hugging Face causal LM on your text; saves a PEFT adapter.")
        {
            model, baseDType, embeddingDType, noQuantCache, checkpointing, data, targets, exclude, layers, rank, alpha,
            dropout, useDora, steps, epochs, lr, batch, accum, window, seed, output, checkpoints, saveSteps, resume,
        };
        RecipeCommand.SetAction(command, parse =>
        {
            string outDir = parse.GetValue(output)!;
            ModelArguments.RequireWritableDirectory("--out", outDir, createParents: true);
            float d = parse.GetValue(dropout);
            if (!(d >= 0 && d < 1))
                throw new ArgumentException("--dropout: " +
                    $"{d.ToString(CultureInfo.InvariantCulture)} must be in [0, 1).");
            var o = defaults with
            {
                ModelDir = parse.GetValue(model)!, BaseDType = parse.GetValue(baseDType),
                EmbeddingDType = parse.GetValue(embeddingDType), QuantizedCache = !parse.GetValue(noQuantCache),
                GradientCheckpointing = parse.GetValue(checkpointing), DataFile = parse.GetValue(data)!,
                OutDir = outDir,
                Targets = CommonOptions.CommaList(parse.GetValue(targets)),
                Exclude = CommonOptions.CommaList(parse.GetValue(exclude)),
                Layers = CommonOptions.CommaInts(parse.GetValue(layers), "--layers", 0,
                    "a layer index (an integer ≥ 0)"),
                Rank = parse.GetValue(rank), Alpha = parse.GetValue(alpha), Dropout = d,
                UseDora = parse.GetValue(useDora), Steps = parse.GetValue(steps), Epochs = parse.GetValue(epochs),
                LearningRate = parse.GetValue(lr), BatchSize = parse.GetValue(batch), GradAccum = parse.GetValue(accum),
                Context = parse.GetValue(window), Seed = parse.GetValue(seed),
                CheckpointDir = parse.GetValue(checkpoints), SaveSteps = parse.GetValue(saveSteps),
                ResumeFrom = parse.GetValue(resume),
            };
            LmFinetuning.Result r = LmFinetuning.Run(o, HfTokenizer.FromFolder(o.ModelDir), new CliObserver(context),
                context.Cancellation);
            context.Output.WriteLine(r.Summary);
            context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Steps} steps: loss {r.FirstLoss:F4} -> " +
                $"{r.LastLoss:F4}{(r.EvalLoss is { } e ? $", eval_loss {e:F4}" : "")}; {r.TokensPerSecond:F0} " +
                $"tokens/s; adapter in {Path.GetFullPath(outDir)}"));
            var json = new Dictionary<string, object?>
            {
                ["first_loss"] = r.FirstLoss, ["last_loss"] = r.LastLoss, ["trainable_params"] = r.TrainableParams,
                ["total_params"] = r.TotalParams, ["tokens_per_second"] = r.TokensPerSecond, ["steps"] = r.Steps,
            };
            if (r.EvalLoss is { } ev) json["eval_loss"] = ev;
            return json;
        });
        return command;
    }
}
