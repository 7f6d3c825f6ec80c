using System.CommandLine;
using System.Diagnostics;
using LoRA.Managed.Data;
using LoRA.Managed.Kernels;
using LoRA.Managed.Recipes;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using LoRA.Managed.Training;

namespace LoRA.Managed.Cli.Commands;

/// <summary><c>lora train</c>: trains the blog's MLP with Adam on a digit subset and reports test accuracy on
/// it.</summary>
internal static class TrainCommand
{
    public static Command Create(CliContext context)
    {
        var digits = CommonOptions.Digits("--digits", "Classes to train and test on, e.g. 0-7, 8,9 or 0-9.");
        var epochs = CommonOptions.Int("--epochs", 5, 1, "Passes over the training set.");
        var lr = CommonOptions.PositiveDouble("--lr", 1e-3, "Adam's learning rate.");
        var batchSize = CommonOptions.Int("--batch-size", 64, 1, "Samples per batch.");
        var seed = CommonOptions.Seed();
        var data = CommonOptions.Data();
        var normalize = CommonOptions.Normalize();
        var output =
            CommonOptions.NonEmptyPath(new Option<string?>("--out") { Description = "Save the trained model here as " +
                "safetensors with PyTorch's state_dict names.", HelpName = "FILE" });

        var command = new Command("train",
            "Train the blog's MLP (784-512-256-10) with Adam on some digits and report test accuracy and " +
            "the confusion matrix.")
        {
            digits, epochs, lr, batchSize, seed, data, normalize, output,
        };
        var checkpoints = new CheckpointOptions();
        foreach (Option o in checkpoints.All) command.Options.Add(o);
        RecipeCommand.SetAction(command, parse =>
        {
            DigitSet set = parse.GetValue(digits);
            string? outPath = parse.GetValue(output);
            var options = checkpoints.Apply(parse, outPath, new ClassifierTrainingOptions
            {
                Epochs = parse.GetValue(epochs), LearningRate = parse.GetValue(lr),
                BatchSize = parse.GetValue(batchSize), Label = $"train {set}",
                RunTags = new Dictionary<string, string> { ["digits"] = set.ToString(),
                    ["normalize"] = parse.GetValue(normalize) ? "true" : "false" },
            });
            return Run(context, set, options, parse.GetValue(seed), parse.GetValue(data), parse.GetValue(normalize),
                outPath);
        });
        return command;
    }

    private static Dictionary<string, object?> Run(CliContext context, DigitSet digits,
        ClassifierTrainingOptions options, ulong seed,
        string? dataDirectory, bool normalize, string? outPath)
    {
        var total = Stopwatch.StartNew();
        if (outPath is not null) ModelArguments.RequireWritableFile("--out", outPath);
        CheckpointOptions.RequireWritable(options);
        LoadedMnist mnist = LoadedMnist.Load(context, dataDirectory, normalize);
        MnistDataset train = mnist.Train.Filter(digits), test = mnist.Test.Filter(digits);
        context.Output.WriteLine($"train: digits {digits}, {train.Count:N0} samples, {options.Epochs} epochs, Adam " +
            $"lr {options.LearningRate}, batch {options.BatchSize}, seed {seed}, threads {ComputeThreads.Max}");

        var clock = Stopwatch.StartNew();
        var (model, training) = ClassifierTraining.TrainBlogMlp(train, options, new TorchGenerator(seed),
            new CliObserver(context), context.Cancellation);
        double trainSeconds = clock.Elapsed.TotalSeconds;
        if (outPath is not null)
        {
            bool interrupted = context.GuardedSave(() => ModelFile.Save(model, outPath));
            context.Output.WriteLine($"model saved to {Path.GetFullPath(outPath)}");
            if (interrupted)
                throw new CommandInterruptedException("interrupted during the final save, which was finished: model " +
                    $"saved to {Path.GetFullPath(outPath)}.");
        }

        EvaluationResult result = ClassifierEvaluation.Evaluate(model, test);
        EvaluationReport.Print(context, $"test {digits}", result, digits);
        double totalSeconds = total.Elapsed.TotalSeconds; // one reading for the line and the JSON
        context.Output.WriteLine($"trained in {trainSeconds:F1} s, total {totalSeconds:F1} s");

        var values = EvaluationReport.ToJson(result);
        values["digits"] = digits.ToString();
        values["epochs"] = options.Epochs;
        values["lr"] = options.LearningRate;
        values["batch_size"] = options.BatchSize;
        values["seed"] = seed;
        values["threads"] = ComputeThreads.Max;
        values["normalize"] = normalize;
        values["train_count"] = train.Count;
        values["final_loss"] = training.StepLosses[^1];
        values["seconds_load"] = mnist.Seconds;
        values["seconds_train"] = trainSeconds;
        values["seconds_total"] = totalSeconds;
        return values;
    }
}
