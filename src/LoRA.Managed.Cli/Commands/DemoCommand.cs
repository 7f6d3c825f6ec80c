using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using LoRA.Managed.Cli.Bench;
using LoRA.Managed.Kernels;
using LoRA.Managed.Recipes;
using LoRA.Managed.Training;
using Spectre.Console;

namespace LoRA.Managed.Cli.Commands;

/// <summary>
/// <c>lora demo</c>: the blog's experiment end to end. Phase 1 trains the MLP on digits 0–7 (Adam 1e-3,
/// batch 64, 5 epochs) and measures it on test 0–7 and 8–9; phase 2 freezes it, wraps the last layer with a
/// rank-4, α = 1, SVD-initialised adapter (scale α, as the blog) and trains only the adapter with Adam 5e-3
/// for 3 epochs on 8–9; then both test sets again — 0–7 too, which the blog does not show: how much the
/// adapted model forgets.
/// </summary>
internal static class DemoCommand
{
    // The blog's figures (one run, PyTorch).
    private const double BlogBase0To7 = 0.9808, BlogBase89 = 0.0, BlogLora89 = 0.9516;
    private const long BlogBaseParams = 535_818, BlogLoraParams = 1_064;

    public static Command Create(CliContext context)
    {
        var seed = CommonOptions.Seed();
        var epochs = CommonOptions.Int("--epochs", 5, 1, "Epochs of base training on digits 0-7 (the blog: 5).");
        var loraEpochs = CommonOptions.Int("--lora-epochs", 3, 1,
            "Epochs of adapter training on digits 8-9 (the blog: 3).");
        var lora = new LoraOptions();
        var data = CommonOptions.Data();
        var output =
            CommonOptions.NonEmptyPath(new Option<string?>("--out") { Description = "Keep the run in this directory: " +
                "base model, adapter (PEFT format), per-step losses (CSV) and a loss curve (SVG).", HelpName = "DIR" });
        var normalize = CommonOptions.Normalize();
        var replay = ReplayOption();

        var command = new Command("demo",
            "The blog's experiment: train the MLP on digits 0-7, adapt its last layer to 8-9 with a rank-4 LoRA, and " +
            "compare every figure with the blog's.")
        {
            seed, epochs, loraEpochs, data, output, normalize, replay,
        };
        foreach (Option o in lora.All) command.Options.Add(o);
        RecipeCommand.SetAction(command, parse => Run(context,
            new BlogExperimentOptions { Seed = parse.GetValue(seed), Epochs = parse.GetValue(epochs),
                LoraEpochs = parse.GetValue(loraEpochs), Lora = lora.ToConfig(parse),
                Replay = parse.GetValue(replay) },
            parse.GetValue(data), parse.GetValue(normalize), parse.GetValue(output)));
        return command;
    }

    private static Dictionary<string, object?> Run(CliContext context, BlogExperimentOptions options, string? data,
        bool normalize, string? outDir)
    {
        var total = Stopwatch.StartNew();
        if (outDir is not null) ModelArguments.RequireWritableDirectory("--out", outDir, createParents: true);
        context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"demo: seed {options.Seed}, threads {ComputeThreads.Max}, base epochs {options.Epochs}, " +
            $"LoRA epochs {options.LoraEpochs}; LoRA {LoraOptions.Describe(options.Lora)}"));
        LoadedMnist mnist = LoadedMnist.Load(context, data, normalize);
        BlogExperimentResult r = BlogExperiment.Run(mnist.Train, mnist.Test, options, new CliObserver(context),
            context.Cancellation);

        EvaluationReport.Print(context, "base model, test 0-7", r.Base0To7, BlogExperiment.BaseDigits);
        EvaluationReport.Print(context, "base model, test 8-9", r.Base89, BlogExperiment.NewDigits);
        EvaluationReport.Print(context, "adapted model, test 8-9", r.Lora89, BlogExperiment.NewDigits);
        EvaluationReport.Print(context, "adapted model, test 0-7", r.Lora0To7, BlogExperiment.BaseDigits);
        if (outDir is not null)
        {
            RunArtifacts.SaveRun(outDir, r.BaseModel, r.Adapted, r.BaseTraining.StepLosses, r.LoraTraining.StepLosses);
            context.Output.WriteLine($"kept the run in {Path.GetFullPath(outDir)}: {RunArtifacts.BaseModelFile}, " +
                $"{RunArtifacts.AdapterDirectory}/, {RunArtifacts.LossesFile}, {RunArtifacts.CurveFile}");
        }

        double percent = 100.0 * r.LoraParameters / r.BaseParameters;
        var table = new Table { Border = context.Border, Title = new TableTitle("the blog's figures and ours") };
        table.AddColumn("figure");
        table.AddColumn(new TableColumn("blog").RightAligned());
        table.AddColumn(new TableColumn("ours").RightAligned());
        ReplayRun? rr = r.Replay;
        if (rr is not null)
            table.AddColumn(new TableColumn(FormattableString.Invariant($"ours, replay {rr.Fraction:0.###}"))
                .RightAligned());
        void Row(string figure, string blog, string ours, string? replay = null)
        {
            if (rr is null) table.AddRow(figure, blog, ours);
            else table.AddRow(figure, blog, ours, replay ?? "");
        }
        Row("base model, accuracy on test 0-7", Acc(BlogBase0To7), Acc(r.Base0To7.Accuracy));
        Row("base model, accuracy on test 8-9", Acc(BlogBase89), Acc(r.Base89.Accuracy));
        Row("adapted model, accuracy on test 8-9", Acc(BlogLora89), Acc(r.Lora89.Accuracy),
            rr is null ? null : Acc(rr.Lora89.Accuracy));
        Row("adapted model, accuracy on test 0-7 (forgetting)", "not shown", Acc(r.Lora0To7.Accuracy),
            rr is null ? null : Acc(rr.Lora0To7.Accuracy));
        Row("trainable parameters, base model", Count(BlogBaseParams), Count(r.BaseParameters));
        Row("trainable parameters, adapter", Count(BlogLoraParams), Count(r.LoraParameters),
            rr is null ? null : Count(rr.Parameters));
        Row("adapter / base parameters", "0.20%", percent.ToString("F2", CultureInfo.InvariantCulture) + "%");
        if (rr is not null)
            Row("seconds, adapter training", "", r.SecondsLora.ToString("F1", CultureInfo.InvariantCulture),
                rr.Seconds.ToString("F1", CultureInfo.InvariantCulture));
        context.Console.Write(table);
        context.Output.WriteLine(r.Adapted.TrainableParameterSummary());
        if (r.Replay is { } replayRun)
            context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"replay {replayRun.Fraction:0.###}: {replayRun.ReplaySamples:N0} samples of 0-7 replayed " +
                $"({replayRun.TrainSamples:N0} in the adapter phase), LoRA training {replayRun.Seconds:F1} s"));
        double totalSeconds = total.Elapsed.TotalSeconds; // one reading for the line and the JSON
        context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"seconds: load {mnist.Seconds:F2}, base training {r.SecondsBase:F1}, LoRA training {r.SecondsLora:F1}, " +
            $"total {totalSeconds:F1} ({ComputeThreads.Max} threads)"));
        // Issue 20's end-to-end rate: the products of every sample of every epoch (a short last batch does a batch's
        // share of the flops) over the whole of phase 1, its data loading and warm-up included.
        double baseFlops = options.Epochs * (double)mnist.Train.Filter(BlogExperiment.BaseDigits).Count *
            QuickBench.TrainStepFlops / QuickBench.Batch;
        double baseGflops = baseFlops / r.SecondsBase / 1e9;
        context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"base training: {baseFlops / 1e9:F1} GFLOP of products in {r.SecondsBase:F2} s = " +
            $"{baseGflops:F1} GFLOP/s (lora bench prints this machine's FMA peak)"));

        var json = new Dictionary<string, object?>
        {
            ["base_acc_0to7"] = r.Base0To7.Accuracy,
            ["base_acc_89"] = r.Base89.Accuracy,
            ["lora_acc_89"] = r.Lora89.Accuracy,
            ["lora_acc_0to7"] = r.Lora0To7.Accuracy,
            ["base_trainable_params"] = r.BaseParameters,
            ["lora_trainable_params"] = r.LoraParameters,
            ["lora_trainable_percent"] = percent,
            ["seconds_load"] = mnist.Seconds,
            ["seconds_base_train"] = r.SecondsBase,
            ["seconds_lora_train"] = r.SecondsLora,
            ["seconds_total"] = totalSeconds,
            ["base_train_gflop"] = baseFlops / 1e9,
            ["base_train_gflops"] = baseGflops,
            ["seed"] = options.Seed,
            ["threads"] = ComputeThreads.Max,
        };
        if (r.Replay is { } rep)
        {
            json["replay_fraction"] = rep.Fraction;
            json["replay_samples"] = rep.ReplaySamples;
            json["replay_lora_acc_89"] = rep.Lora89.Accuracy;
            json["replay_lora_acc_0to7"] = rep.Lora0To7.Accuracy;
            json["replay_lora_trainable_params"] = rep.Parameters;
            json["seconds_replay_train"] = rep.Seconds;
        }
        return json;
    }

    // The fraction of train 0-7 replayed in a second adapter phase; 0 (the default) is the blog's recipe alone.
    private static Option<double> ReplayOption()
    {
        var option = new Option<double>("--replay")
        {
            Description = "Also rerun the adapter phase from the same base model with this fraction of train 0-7 "
                + "replayed (e.g. 0.05) and add its figures as a column; 0: the blog's recipe only.",
            DefaultValueFactory = _ => 0.0, HelpName = "F",
        };
        option.Validators.Add(result =>
        {
            double v = result.GetValueOrDefault<double>();
            if (!(v >= 0 && v <= 1)) result.AddError("--replay: must be a fraction from 0 to 1.");
        });
        return option;
    }

    private static string Acc(double accuracy) => accuracy.ToString("F4", CultureInfo.InvariantCulture);

    private static string Count(long n) => n.ToString("N0", CultureInfo.InvariantCulture);
}
