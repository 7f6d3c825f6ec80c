using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using LoRA.Managed.Data;
using LoRA.Managed.Kernels;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
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

    private static readonly DigitSet BaseDigits = DigitSet.Parse("0-7"), NewDigits = DigitSet.Parse("8,9");

    private sealed record Settings(ulong Seed, int Epochs, int LoraEpochs, LoraConfig Lora, int? Threads, string? Data,
        string? Out, string? Json, bool Normalize);

    public static Command Create(CliContext context)
    {
        var seed = CommonOptions.Seed();
        var epochs = CommonOptions.Int("--epochs", 5, 1, "Epochs of base training on digits 0-7 (the blog: 5).");
        var loraEpochs = CommonOptions.Int("--lora-epochs", 3, 1, "Epochs of adapter training on digits 8-9 (the blog: 3).");
        var lora = new LoraOptions();
        var threads = CommonOptions.Threads();
        var data = CommonOptions.Data();
        var output = CommonOptions.NonEmptyPath(new Option<string?>("--out") { Description = "Keep the run in this directory: base model, adapter (PEFT format), per-step losses (CSV) and a loss curve (SVG).", HelpName = "DIR" });
        var json = CommonOptions.Json();
        var normalize = CommonOptions.Normalize();

        var command = new Command("demo", "The blog's experiment: train the MLP on digits 0-7, adapt its last layer to 8-9 with a rank-4 LoRA, and compare every figure with the blog's.")
        {
            seed, epochs, loraEpochs, threads, data, output, json, normalize,
        };
        foreach (Option o in lora.All) command.Options.Add(o);
        command.SetAction(parse => Run(context, new Settings(
            parse.GetValue(seed), parse.GetValue(epochs), parse.GetValue(loraEpochs), lora.ToConfig(parse), parse.GetValue(threads),
            parse.GetValue(data), parse.GetValue(output), parse.GetValue(json), parse.GetValue(normalize))));
        return command;
    }

    private static int Run(CliContext context, Settings s)
    {
        var total = Stopwatch.StartNew();
        if (s.Threads is { } n) ComputeThreads.Max = n;
        if (s.Out is not null) ModelArguments.RequireWritableDirectory("--out", s.Out, createParents: true);
        if (s.Json is not null) ModelArguments.RequireWritableFile("--json", s.Json);
        context.Output.WriteLine(FormattableString.Invariant(
            $"demo: seed {s.Seed}, threads {ComputeThreads.Max}, base epochs {s.Epochs}, LoRA epochs {s.LoraEpochs}; LoRA {LoraOptions.Describe(s.Lora)}"));

        LoadedMnist mnist = LoadedMnist.Load(context, s.Data, s.Normalize);
        MnistDataset test0To7 = mnist.Test.Filter(BaseDigits), test89 = mnist.Test.Filter(NewDigits);
        var generator = new TorchGenerator(s.Seed);

        // Phase 1: the base model on 0-7.
        MnistDataset train0To7 = mnist.Train.Filter(BaseDigits);
        context.Output.WriteLine($"phase 1: base model on digits {BaseDigits} ({train0To7.Count:N0} samples)");
        var clock = Stopwatch.StartNew();
        var (model, baseTrainer) = BlogTraining.Train(context, "base 0-7", train0To7, s.Epochs, 1e-3, 64, generator);
        double baseSeconds = clock.Elapsed.TotalSeconds;
        long baseParams = model.ParameterCount();
        EvaluationResult base0To7 = ClassifierTrainer.Evaluate(model, test0To7), base89 = ClassifierTrainer.Evaluate(model, test89);
        EvaluationReport.Print(context, "base model, test 0-7", base0To7, BaseDigits);
        EvaluationReport.Print(context, "base model, test 8-9", base89, NewDigits);
        if (s.Out is not null) RunArtifacts.SaveBaseModel(s.Out, model);

        // Phase 2: freeze it and train only the adapter on 8-9.
        MnistDataset train89 = mnist.Train.Filter(NewDigits);
        context.Output.WriteLine($"phase 2: LoRA on digits {NewDigits} ({train89.Count:N0} samples), {LoraOptions.Describe(s.Lora)}");
        clock.Restart();
        var (peft, loraTrainer) = BlogTraining.FineTune(context, "LoRA 8-9", model, s.Lora, train89, s.LoraEpochs, 5e-3, 64, generator);
        double loraSeconds = clock.Elapsed.TotalSeconds;
        long loraParams = peft.TrainableParameterCount;
        EvaluationResult lora89 = ClassifierTrainer.Evaluate(peft, test89), lora0To7 = ClassifierTrainer.Evaluate(peft, test0To7);
        EvaluationReport.Print(context, "adapted model, test 8-9", lora89, NewDigits);
        EvaluationReport.Print(context, "adapted model, test 0-7", lora0To7, BaseDigits);
        if (s.Out is not null)
        {
            RunArtifacts.SaveRun(s.Out, peft, baseTrainer.Losses, loraTrainer.Losses);
            context.Output.WriteLine($"kept the run in {Path.GetFullPath(s.Out)}: {RunArtifacts.BaseModelFile}, {RunArtifacts.AdapterDirectory}/, {RunArtifacts.LossesFile}, {RunArtifacts.CurveFile}");
        }

        double percent = 100.0 * loraParams / baseParams;
        var table = new Table { Border = context.Border, Title = new TableTitle("the blog's figures and ours") };
        table.AddColumn("figure");
        table.AddColumn(new TableColumn("blog").RightAligned());
        table.AddColumn(new TableColumn("ours").RightAligned());
        table.AddRow("base model, accuracy on test 0-7", Acc(BlogBase0To7), Acc(base0To7.Accuracy));
        table.AddRow("base model, accuracy on test 8-9", Acc(BlogBase89), Acc(base89.Accuracy));
        table.AddRow("adapted model, accuracy on test 8-9", Acc(BlogLora89), Acc(lora89.Accuracy));
        table.AddRow("adapted model, accuracy on test 0-7 (forgetting)", "not shown", Acc(lora0To7.Accuracy));
        table.AddRow("trainable parameters, base model", BlogBaseParams.ToString("N0", CultureInfo.InvariantCulture), baseParams.ToString("N0", CultureInfo.InvariantCulture));
        table.AddRow("trainable parameters, adapter", BlogLoraParams.ToString("N0", CultureInfo.InvariantCulture), loraParams.ToString("N0", CultureInfo.InvariantCulture));
        table.AddRow("adapter / base parameters", "0.20%", percent.ToString("F2", CultureInfo.InvariantCulture) + "%");
        context.Console.Write(table);
        context.Output.WriteLine(peft.TrainableParameterSummary());
        double totalSeconds = total.Elapsed.TotalSeconds; // one reading for the line and the JSON
        context.Output.WriteLine(FormattableString.Invariant(
            $"seconds: load {mnist.Seconds:F2}, base training {baseSeconds:F1}, LoRA training {loraSeconds:F1}, total {totalSeconds:F1} ({ComputeThreads.Max} threads)"));

        if (s.Json is not null)
        {
            JsonReport.Write(s.Json, new Dictionary<string, object?>
            {
                ["base_acc_0to7"] = base0To7.Accuracy,
                ["base_acc_89"] = base89.Accuracy,
                ["lora_acc_89"] = lora89.Accuracy,
                ["lora_acc_0to7"] = lora0To7.Accuracy,
                ["base_trainable_params"] = baseParams,
                ["lora_trainable_params"] = loraParams,
                ["lora_trainable_percent"] = percent,
                ["seconds_load"] = mnist.Seconds,
                ["seconds_base_train"] = baseSeconds,
                ["seconds_lora_train"] = loraSeconds,
                ["seconds_total"] = totalSeconds,
                ["seed"] = s.Seed,
                ["threads"] = ComputeThreads.Max,
            });
        }
        return 0;
    }

    private static string Acc(double accuracy) => accuracy.ToString("F4", CultureInfo.InvariantCulture);
}
