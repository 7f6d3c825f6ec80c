using System.CommandLine;
using System.Diagnostics;
using LoRA.Managed.Data;
using LoRA.Managed.Kernels;
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
        var output = ModelArguments.Out("Directory to write the adapter to (adapter_model.safetensors, adapter_config.json).");
        var seed = CommonOptions.Seed();
        var threads = CommonOptions.Threads();
        var data = CommonOptions.Data();
        var normalize = CommonOptions.Normalize();
        var json = CommonOptions.Json();
        var command = new Command("finetune", "Train a LoRA adapter on a saved base model and save it in PEFT's format.")
        {
            model, digits, epochs, lr, batchSize, output, seed, threads, data, normalize, json,
        };
        foreach (Option o in lora.All) command.Options.Add(o);
        var checkpoints = new CheckpointOptions();
        foreach (Option o in checkpoints.All) command.Options.Add(o);
        command.SetAction(parse => Run(context, parse.GetValue(model)!, parse.GetValue(digits), parse.GetValue(epochs), parse.GetValue(lr),
            parse.GetValue(batchSize), lora.ToConfig(parse), parse.GetValue(output)!, parse.GetValue(seed), parse.GetValue(threads),
            parse.GetValue(data), parse.GetValue(normalize), parse.GetValue(json), checkpoints.Read(parse, parse.GetValue(output)) with
            {
                Tags = new Dictionary<string, string> { ["digits"] = parse.GetValue(digits).ToString(), ["normalize"] = parse.GetValue(normalize) ? "true" : "false" },
            }));
        return command;
    }

    private static int Run(CliContext context, string modelPath, DigitSet digits, int epochs, double lr, int batchSize, LoraConfig config,
        string outDir, ulong seed, int? threads, string? dataDirectory, bool normalize, string? jsonPath, CheckpointSettings checkpoints)
    {
        var total = Stopwatch.StartNew();
        using var signals = InterruptSignals.Listen(context.Error);
        if (threads is { } n) ComputeThreads.Max = n;
        if (jsonPath is not null) ModelArguments.RequireWritableFile("--json", jsonPath);
        ModelArguments.RequireWritableDirectory("--out", outDir);
        checkpoints.RequireWritable();
        var baseModel = ModelArguments.LoadBlogMlp(modelPath);
        LoadedMnist mnist = LoadedMnist.Load(context, dataDirectory, normalize);
        MnistDataset train = mnist.Train.Filter(digits), test = mnist.Test.Filter(digits);
        context.Output.WriteLine($"finetune: {modelPath}, digits {digits}, {train.Count:N0} samples, {epochs} epochs, Adam lr {lr}, LoRA {LoraOptions.Describe(config)}");

        var clock = Stopwatch.StartNew();
        var (peft, trainer) = BlogTraining.FineTune(context, $"LoRA {digits}", baseModel, config, train, epochs, lr, batchSize, new TorchGenerator(seed), checkpoints);
        double seconds = clock.Elapsed.TotalSeconds;
        if (signals.Save(() => peft.SaveAdapter(outDir)))
            throw new TrainingInterruptedException($"interrupted during the final save, which was finished: adapter saved to {Path.GetFullPath(outDir)}.");
        EvaluationResult result = ClassifierTrainer.Evaluate(peft, test);
        EvaluationReport.Print(context, $"adapted model, test {digits}", result, digits);
        context.Output.WriteLine($"adapter saved to {Path.GetFullPath(outDir)}; trained in {seconds:F1} s");

        if (jsonPath is not null)
        {
            var values = EvaluationReport.ToJson(result);
            values["trainable_params"] = peft.TrainableParameterCount;
            values["all_params"] = peft.AllParameterCount;
            values["final_loss"] = trainer.Losses[^1];
            values["seconds_train"] = seconds;
            values["seconds_total"] = total.Elapsed.TotalSeconds;
            values["seed"] = seed;
            values["threads"] = ComputeThreads.Max;
            JsonReport.Write(jsonPath, values);
        }
        return 0;
    }
}
