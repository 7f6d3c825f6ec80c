using System.CommandLine;
using System.Diagnostics;
using LoRA.Managed.Data;
using LoRA.Managed.Kernels;
using LoRA.Managed.Recipes;
using LoRA.Managed.Lora;
using LoRA.Managed.Tensors;
using LoRA.Managed.Training;

namespace LoRA.Managed.Cli.Commands;

/// <summary>
/// <c>lora finetune</c>: loads a base model, wraps its targets with LoRA, trains only the adapter (Adam) on a digit
/// subset and saves the adapter in PEFT's layout (with <c>lora_alpha</c> chosen so PEFT's scale equals ours).
/// </summary>
internal static class FinetuneCommand
{
    public static Command Create(CliContext context)
    {
        var model = ModelArguments.Model();
        var digits = CommonOptions.Digits("--digits", "Classes to adapt to, e.g. 8,9.");
        var epochs = CommonOptions.Int("--epochs", 3, 1, "Passes over the training set (the blog: 3).");
        var lr = CommonOptions.PositiveDouble("--lr", 5e-3, "Adam's learning rate (the blog: 5e-3).");
        var batchSize = CommonOptions.Int("--batch-size", 64, 1, "Samples per batch.");
        var lora = new LoraOptions();
        var output = ModelArguments.Out("Directory to write the adapter to (adapter_model.safetensors, " +
            "adapter_config.json).");
        var seed = CommonOptions.Seed();
        var data = CommonOptions.Data();
        var normalize = CommonOptions.Normalize();
        var command = new Command("finetune",
            "Train a LoRA adapter on a saved base model and save it in PEFT's format.")
        {
            model, digits, epochs, lr, batchSize, output, seed, data, normalize,
        };
        foreach (Option o in lora.All) command.Options.Add(o);
        var checkpoints = new CheckpointOptions();
        foreach (Option o in checkpoints.All) command.Options.Add(o);
        RecipeCommand.SetAction(command, parse =>
        {
            DigitSet set = parse.GetValue(digits);
            string outDir = parse.GetValue(output)!;
            var settings = new Settings(parse.GetValue(model)!, set, lora.ToConfig(parse), outDir, parse.GetValue(seed),
                parse.GetValue(data),
                parse.GetValue(normalize), checkpoints.Apply(parse, outDir, new ClassifierTrainingOptions
                {
                    Epochs = parse.GetValue(epochs), LearningRate = parse.GetValue(lr),
                    BatchSize = parse.GetValue(batchSize), Label = $"LoRA {set}",
                    RunTags = new Dictionary<string, string> { ["digits"] = set.ToString(),
                        ["normalize"] = parse.GetValue(normalize) ? "true" : "false" },
                }));
            return Run(context, settings);
        });
        return command;
    }

    /// <summary>One invocation's values.</summary>
    private sealed record Settings(string ModelPath, DigitSet Digits, LoraConfig Lora, string OutDir, ulong Seed,
        string? Data,
        bool Normalize, ClassifierTrainingOptions Training);

    private static Dictionary<string, object?> Run(CliContext context, Settings s)
    {
        var total = Stopwatch.StartNew();
        ModelArguments.RequireWritableDirectory("--out", s.OutDir);
        CheckpointOptions.RequireWritable(s.Training);
        var baseModel = ModelArguments.LoadBlogMlp(s.ModelPath);
        LoadedMnist mnist = LoadedMnist.Load(context, s.Data, s.Normalize);
        MnistDataset train = mnist.Train.Filter(s.Digits), test = mnist.Test.Filter(s.Digits);
        context.Output.WriteLine($"finetune: {s.ModelPath}, digits {s.Digits}, {train.Count:N0} samples, " +
            $"{s.Training.Epochs} epochs, Adam lr {s.Training.LearningRate}, LoRA {LoraOptions.Describe(s.Lora)}");

        var clock = Stopwatch.StartNew();
        var (peft, training) = ClassifierTraining.FineTune(baseModel, s.Lora, train, s.Training,
            new TorchGenerator(s.Seed),
            new CliObserver(context), context.Cancellation);
        double seconds = clock.Elapsed.TotalSeconds;
        if (context.GuardedSave(() => peft.SaveAdapter(s.OutDir)))
            throw new CommandInterruptedException("interrupted during the final save, which was finished: adapter " +
                $"saved to {Path.GetFullPath(s.OutDir)}.");
        EvaluationResult result = ClassifierEvaluation.Evaluate(peft, test);
        EvaluationReport.Print(context, $"adapted model, test {s.Digits}", result, s.Digits);
        context.Output.WriteLine($"adapter saved to {Path.GetFullPath(s.OutDir)}; trained in {seconds:F1} s");

        var values = EvaluationReport.ToJson(result);
        values["trainable_params"] = peft.TrainableParameterCount;
        values["all_params"] = peft.AllParameterCount;
        values["final_loss"] = training.StepLosses[^1];
        values["seconds_train"] = seconds;
        values["seconds_total"] = total.Elapsed.TotalSeconds;
        values["seed"] = s.Seed;
        values["threads"] = ComputeThreads.Max;
        return values;
    }
}
