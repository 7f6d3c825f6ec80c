using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using LoRA.Managed.Data;
using LoRA.Managed.Kernels;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using LoRA.Managed.Training;
using Spectre.Console;

namespace LoRA.Managed.Cli.Commands;

/// <summary>
/// <c>lora demo</c>: the blog's experiment. Phase 1 trains the MLP on digits 0–7 (Adam 1e-3, batch 64)
/// and measures it on the test digits 0–7 and 8–9, next to the blog's figures.
/// </summary>
internal static class DemoCommand
{
    /// <summary>The blog's base-model accuracy on test digits 0–7.</summary>
    private const double BlogBaseAccuracy0To7 = 0.9808;

    /// <summary>The blog's base-model accuracy on test digits 8–9 (it never saw them).</summary>
    private const double BlogBaseAccuracy89 = 0.0;

    private static readonly DigitSet BaseDigits = DigitSet.Parse("0-7"), NewDigits = DigitSet.Parse("8,9");

    /// <summary>The demo's options, validated.</summary>
    internal sealed record Settings(
        ulong Seed, int Epochs, int LoraEpochs, int Rank, double Alpha, string Init, string Scaling,
        IReadOnlyList<string> Targets, int? Threads, string? Data, string? Json, bool Normalize);

    /// <summary>Phase 1's results.</summary>
    private sealed record BasePhase(Mlp Model, EvaluationResult On0To7, EvaluationResult On89, double Seconds);

    public static Command Create(CliContext context)
    {
        var seed = CommonOptions.Seed();
        var epochs = CommonOptions.Int("--epochs", 5, 1, "Epochs of base training on digits 0-7.");
        var loraEpochs = CommonOptions.Int("--lora-epochs", 5, 1, "Epochs of LoRA fine-tuning on digits 8-9.");
        var rank = CommonOptions.Int("--rank", 1, 1, "LoRA rank r.");
        var alpha = CommonOptions.PositiveDouble("--alpha", 1.0, "LoRA alpha.");
        var init = new Option<string>("--init") { Description = "LoRA initialisation: svd (the blog), pissa, or default (PEFT: Kaiming-uniform A, zero B).", DefaultValueFactory = _ => "svd" };
        init.AcceptOnlyFromAmong("svd", "pissa", "default");
        var scaling = new Option<string>("--scaling") { Description = "LoRA scale: alpha (the blog), alpha-over-rank (PEFT), rslora (alpha/sqrt(r)).", DefaultValueFactory = _ => "alpha" };
        scaling.AcceptOnlyFromAmong("alpha", "alpha-over-rank", "rslora");
        var targets = new Option<string>("--targets") { Description = "Comma-separated Linear modules to adapt.", DefaultValueFactory = _ => "layers.1,layers.3,layers.5", HelpName = "modules" };
        targets.Validators.Add(result =>
        {
            string[] linear = LinearModuleNames();
            foreach (string name in SplitTargets(result.GetValueOrDefault<string>() ?? ""))
                if (!linear.Contains(name))
                    result.AddError($"--targets: '{name}' is not a Linear module of the blog MLP (choose from {string.Join(", ", linear)}).");
            if (SplitTargets(result.GetValueOrDefault<string>() ?? "").Length == 0) result.AddError("--targets: give at least one module.");
        });
        var threads = CommonOptions.Threads();
        var data = CommonOptions.Data();
        var json = CommonOptions.Json();
        var normalize = CommonOptions.Normalize();

        var command = new Command("demo", "The blog's experiment: train the MLP on digits 0-7, then measure it on 0-7 and on the unseen 8-9.")
        {
            seed, epochs, loraEpochs, rank, alpha, init, scaling, targets, threads, data, json, normalize,
        };
        command.SetAction(parse => Run(context, new Settings(
            parse.GetValue(seed), parse.GetValue(epochs), parse.GetValue(loraEpochs), parse.GetValue(rank), parse.GetValue(alpha),
            parse.GetValue(init)!, parse.GetValue(scaling)!, SplitTargets(parse.GetValue(targets)!), parse.GetValue(threads),
            parse.GetValue(data), parse.GetValue(json), parse.GetValue(normalize))));
        return command;
    }

    private static int Run(CliContext context, Settings settings)
    {
        var total = Stopwatch.StartNew();
        if (settings.Threads is { } n) ComputeThreads.Max = n;
        context.Output.WriteLine(string.Format(CultureInfo.InvariantCulture,
            "demo: seed {0}, threads {1}, base epochs {2}; LoRA settings: rank {3}, alpha {4}, init {5}, scaling {6}, targets {7}, epochs {8}",
            settings.Seed, ComputeThreads.Max, settings.Epochs, settings.Rank, settings.Alpha, settings.Init, settings.Scaling,
            string.Join(",", settings.Targets), settings.LoraEpochs));

        LoadedMnist mnist = LoadedMnist.Load(context, settings.Data, settings.Normalize);
        BasePhase phase1 = TrainBase(context, mnist, settings);

        var table = new Table { Border = context.Border, Title = new TableTitle("blog vs ours") };
        table.AddColumn("figure");
        table.AddColumn(new TableColumn("blog").RightAligned());
        table.AddColumn(new TableColumn("ours").RightAligned());
        table.AddRow("base acc 0-7", Format(BlogBaseAccuracy0To7), Format(phase1.On0To7.Accuracy));
        table.AddRow("base acc 8-9", Format(BlogBaseAccuracy89), Format(phase1.On89.Accuracy));
        context.Console.Write(table);
        context.Output.WriteLine(string.Format(CultureInfo.InvariantCulture, "load {0:F2} s, base training {1:F1} s, total {2:F1} s",
            mnist.Seconds, phase1.Seconds, total.Elapsed.TotalSeconds));

        if (settings.Json is not null)
        {
            JsonReport.Write(settings.Json, new Dictionary<string, object?>
            {
                ["base_acc_0to7"] = phase1.On0To7.Accuracy,
                ["base_acc_89"] = phase1.On89.Accuracy,
                ["seconds_load"] = mnist.Seconds,
                ["seconds_base_train"] = phase1.Seconds,
                ["seconds_total"] = total.Elapsed.TotalSeconds,
                ["seed"] = settings.Seed,
                ["threads"] = ComputeThreads.Max,
            });
        }
        return 0;
    }

    /// <summary>Phase 1: the base model on digits 0–7 (Adam 1e-3, batch 64), evaluated on test 0–7 and 8–9.</summary>
    private static BasePhase TrainBase(CliContext context, LoadedMnist mnist, Settings settings)
    {
        MnistDataset train = mnist.Train.Filter(BaseDigits);
        context.Output.WriteLine($"phase 1: base model on digits {BaseDigits} ({train.Count:N0} samples)");
        var clock = Stopwatch.StartNew();
        var (model, _) = BlogTraining.Train(context, "base 0-7", train, settings.Epochs, learningRate: 1e-3, batchSize: 64, settings.Seed);
        double seconds = clock.Elapsed.TotalSeconds;
        EvaluationResult on0To7 = ClassifierTrainer.Evaluate(model, mnist.Test.Filter(BaseDigits));
        EvaluationResult on89 = ClassifierTrainer.Evaluate(model, mnist.Test.Filter(NewDigits));
        EvaluationReport.Print(context, "base model, test 0-7", on0To7, BaseDigits);
        EvaluationReport.Print(context, "base model, test 8-9", on89, NewDigits);
        return new BasePhase(model, on0To7, on89, seconds);
    }

    private static string Format(double accuracy) => accuracy.ToString("F4", CultureInfo.InvariantCulture);

    private static string[] SplitTargets(string text) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static string[] LinearModuleNames() =>
        Mlp.Blog(new TorchGenerator(0)).NamedModules().Where(m => m.Value is Linear).Select(m => m.Key).ToArray();
}
