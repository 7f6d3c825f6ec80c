using System.CommandLine;
using System.Diagnostics;
using LoRA.Managed.Data;
using LoRA.Managed.IO;
using LoRA.Managed.Kernels;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using LoRA.Managed.Training;

namespace LoRA.Managed.Cli.Commands;

/// <summary><c>lora train</c>: trains the blog's MLP with Adam on a digit subset and reports test accuracy on it.</summary>
internal static class TrainCommand
{
    public static Command Create(CliContext context)
    {
        var digits = CommonOptions.Digits("--digits", "Classes to train and test on, e.g. 0-7, 8,9 or 0-9.");
        var epochs = CommonOptions.Int("--epochs", 5, 1, "Passes over the training set.");
        var lr = CommonOptions.PositiveDouble("--lr", 1e-3, "Adam's learning rate.");
        var batchSize = CommonOptions.Int("--batch-size", 64, 1, "Samples per batch.");
        var seed = CommonOptions.Seed();
        var threads = CommonOptions.Threads();
        var data = CommonOptions.Data();
        var normalize = CommonOptions.Normalize();
        var json = CommonOptions.Json();
        var output = CommonOptions.NonEmptyPath(new Option<string?>("--out") { Description = "Save the trained model here as safetensors with PyTorch's state_dict names.", HelpName = "FILE" });

        var command = new Command("train", "Train the blog's MLP (784-512-256-10) with Adam on some digits and report test accuracy and the confusion matrix.")
        {
            digits, epochs, lr, batchSize, seed, threads, data, normalize, json, output,
        };
        var checkpoints = new CheckpointOptions();
        foreach (Option o in checkpoints.All) command.Options.Add(o);
        command.SetAction(parse => Run(context, parse.GetValue(digits), parse.GetValue(epochs), parse.GetValue(lr),
            parse.GetValue(batchSize), parse.GetValue(seed), parse.GetValue(threads), parse.GetValue(data),
            parse.GetValue(normalize), parse.GetValue(json), parse.GetValue(output), checkpoints.Read(parse, parse.GetValue(output)) with
            {
                Tags = new Dictionary<string, string> { ["digits"] = parse.GetValue(digits).ToString(), ["normalize"] = parse.GetValue(normalize) ? "true" : "false" },
            }));
        return command;
    }

    private static int Run(CliContext context, DigitSet digits, int epochs, double lr, int batchSize, ulong seed,
        int? threads, string? dataDirectory, bool normalize, string? jsonPath, string? outPath, CheckpointSettings checkpoints)
    {
        var total = Stopwatch.StartNew();
        using var signals = InterruptSignals.Listen(context.Error);
        if (outPath is not null) ModelArguments.RequireWritableFile("--out", outPath);
        if (jsonPath is not null) ModelArguments.RequireWritableFile("--json", jsonPath);
        checkpoints.RequireWritable();
        if (threads is { } n) ComputeThreads.Max = n;
        LoadedMnist mnist = LoadedMnist.Load(context, dataDirectory, normalize);
        MnistDataset train = mnist.Train.Filter(digits), test = mnist.Test.Filter(digits);
        context.Output.WriteLine($"train: digits {digits}, {train.Count:N0} samples, {epochs} epochs, Adam lr {lr}, batch {batchSize}, seed {seed}, threads {ComputeThreads.Max}");

        var clock = Stopwatch.StartNew();
        var (model, trainer) = BlogTraining.Train(context, $"train {digits}", train, epochs, lr, batchSize, new TorchGenerator(seed), checkpoints);
        double trainSeconds = clock.Elapsed.TotalSeconds;
        if (outPath is not null)
        {
            bool interrupted = signals.Save(() => ModelFile.Save(model, outPath));
            context.Output.WriteLine($"model saved to {Path.GetFullPath(outPath)}");
            if (interrupted) throw new TrainingInterruptedException($"interrupted during the final save, which was finished: model saved to {Path.GetFullPath(outPath)}.");
        }

        EvaluationResult result = ClassifierTrainer.Evaluate(model, test);
        EvaluationReport.Print(context, $"test {digits}", result, digits);
        double totalSeconds = total.Elapsed.TotalSeconds; // one reading for the line and the JSON
        context.Output.WriteLine($"trained in {trainSeconds:F1} s, total {totalSeconds:F1} s");

        if (jsonPath is not null)
        {
            var values = EvaluationReport.ToJson(result);
            values["digits"] = digits.ToString();
            values["epochs"] = epochs;
            values["lr"] = lr;
            values["batch_size"] = batchSize;
            values["seed"] = seed;
            values["threads"] = ComputeThreads.Max;
            values["normalize"] = normalize;
            values["train_count"] = train.Count;
            values["final_loss"] = trainer.Losses[^1];
            values["seconds_load"] = mnist.Seconds;
            values["seconds_train"] = trainSeconds;
            values["seconds_total"] = totalSeconds;
            JsonReport.Write(jsonPath, values);
        }
        return 0;
    }
}
