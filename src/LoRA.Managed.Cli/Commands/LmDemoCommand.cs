using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using LoRA.Managed.Data;
using LoRA.Managed.Kernels;
using LoRA.Managed.Recipes;
using LoRA.Managed.Text;

namespace LoRA.Managed.Cli.Commands;

/// <summary>
/// <c>lora lm-demo</c>: LoRA on a language model. Pre-trains a small character GPT on corpus A (fortune cookies),
/// adapts its q/k/v projections with LoRA to corpus B (The Devil's Dictionary) and reports validation losses
/// before and after on both (forgetting on A), the trainable parameters and generated samples.
/// </summary>
internal static class LmDemoCommand
{
    public static Command Create(CliContext context)
    {
        var defaults = new TinyLmExperiment.Settings();
        var seed = CommonOptions.Seed();
        var pretrainSteps = CommonOptions.Int("--pretrain-steps", defaults.PretrainSteps, 1,
            "Optimiser steps of pre-training on corpus A (batches of 32 windows of 64 characters).");
        var finetuneEpochs = CommonOptions.Int("--finetune-epochs", defaults.FinetuneEpochs, 1,
            "Epochs of LoRA fine-tuning on corpus B (evaluated and checkpointed each epoch; the best is kept).");
        var finetuneLr = CommonOptions.PositiveDouble("--finetune-lr", defaults.FinetuneLearningRate,
            "Peak AdamW learning rate of the LoRA fine-tuning (after 10% warm-up, cosine decay).");
        var rank = CommonOptions.Int("--rank", defaults.Rank, 1, "LoRA rank r on q_proj, k_proj and v_proj.");
        var alpha = CommonOptions.PositiveDouble("--alpha", defaults.Alpha, "LoRA alpha (scale alpha/r, as PEFT).");
        var dropout = new Option<float>("--dropout") { Description = "LoRA dropout on the adapter input, in [0, 1).",
            DefaultValueFactory = _ => defaults.Dropout };
        dropout.Validators.Add(r =>
        {
            float v;
            try { v = r.GetValueOrDefault<float>(); } catch (InvalidOperationException) { return; }
            if (!(v >= 0 && v < 1))
                r.AddError($"--dropout: {v.ToString(CultureInfo.InvariantCulture)} must be in [0, 1).");
        });
        var output = CommonOptions.NonEmptyPath(
            new Option<string?>("--out") { Description = "Keep the base model, tokenizer, PEFT adapter and " +
                "checkpoints in this directory.", HelpName = "DIR" });
        var data = new Option<string?>("--data") { Description = "Corpora cache root (default: " +
            $"${DataCache.DataVariable}/corpora, else ~/.cache/lora-managed/corpora); missing files are fetched with " +
            "apt-get download.", HelpName = "DIR" };

        var command = new Command("lm-demo",
            "LoRA on a language model: pre-train a character GPT on fortune cookies, adapt q/k/v to The Devil's " +
            "Dictionary, compare validation losses and samples.")
        {
            seed, pretrainSteps, finetuneEpochs, finetuneLr, rank, alpha, dropout, output, data,
        };
        RecipeCommand.SetAction(command, parse =>
        {
            var settings = defaults with
            {
                Seed = parse.GetValue(seed), PretrainSteps = parse.GetValue(pretrainSteps),
                FinetuneEpochs = parse.GetValue(finetuneEpochs),
                FinetuneLearningRate = parse.GetValue(finetuneLr),
                Rank = parse.GetValue(rank), Alpha = parse.GetValue(alpha), Dropout = parse.GetValue(dropout),
                Out = parse.GetValue(output),
            };
            return Run(context, settings, parse.GetValue(data));
        });
        return command;
    }

    private static Dictionary<string, object?> Run(CliContext context, TinyLmExperiment.Settings s, string? data)
    {
        var total = Stopwatch.StartNew();
        if (s.Out is not null) ModelArguments.RequireWritableDirectory("--out", s.Out, createParents: true);
        context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"lm-demo: seed {s.Seed}, threads {ComputeThreads.Max}, pre-train {s.PretrainSteps} steps, " +
            $"fine-tune {s.FinetuneEpochs} epochs, LoRA r {s.Rank} alpha {s.Alpha} dropout {s.Dropout}"));
        var fetcher = new CorpusFetcher(data);
        string a = fetcher.Load(Corpora.Fortunes), b = fetcher.Load(Corpora.DevilsDictionary);
        context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"corpus A: {Corpora.Fortunes.Title} ({a.Length:N0} chars); " +
            $"corpus B: {Corpora.DevilsDictionary.Title} ({b.Length:N0} chars)"));

        TinyLmExperiment.Result r = TinyLmExperiment.Run(a, b, s, new CliObserver(context), context.Cancellation);
        context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"validation loss (nats/char): B {r.ValLossBBase:F4} -> {r.ValLossBAdapted:F4} adapted; " +
            $"A {r.ValLossABase:F4} -> {r.ValLossAAdapted:F4} (forgetting)"));
        context.Output.WriteLine(r.Summary);
        double seconds = total.Elapsed.TotalSeconds;
        context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"seconds: pre-training {r.SecondsPretrain:F1}, fine-tuning {r.SecondsFinetune:F1}, " +
            $"total {seconds:F1} ({ComputeThreads.Max} threads)"));
        if (s.Out is not null)
            context.Output.WriteLine($"kept the run in {Path.GetFullPath(s.Out)}: " +
                $"{TinyLmExperiment.BaseModelFileName}, tokenizer.json, " +
                $"{TinyLmExperiment.AdapterDirectoryName}/, checkpoints/");
        return new Dictionary<string, object?>
        {
            ["val_loss_a_base"] = r.ValLossABase,
            ["val_loss_b_base"] = r.ValLossBBase,
            ["val_loss_b_adapted"] = r.ValLossBAdapted,
            ["val_loss_a_adapted"] = r.ValLossAAdapted,
            ["trainable_params"] = r.TrainableParams,
            ["all_params"] = r.AllParams,
            ["trainable_percent"] = r.TrainablePercent,
            ["seconds_pretrain"] = r.SecondsPretrain,
            ["seconds_finetune"] = r.SecondsFinetune,
            ["seconds_total"] = seconds,
        };
    }
}
