using System.CommandLine;
using LoRA.Managed.Data;
using LoRA.Managed.Nn;
using LoRA.Managed.Training;

namespace LoRA.Managed.Cli.Commands;

/// <summary><c>lora eval</c>: accuracy and confusion matrix of a saved model, optionally with an adapter, on test
/// digits.</summary>
internal static class EvalCommand
{
    public static Command Create(CliContext context)
    {
        var model = ModelArguments.Model();
        var adapter = ModelArguments.Adapter(required: false);
        var digits = CommonOptions.Digits("--digits", "Test classes to evaluate on, e.g. 8,9 or 0-9.");
        // Every command that reads MNIST takes --seed; evaluation itself draws nothing random, so it has no effect
        // here.
        var seed = new Option<ulong>("--seed") { Description = "Accepted like every MNIST command's --seed; " +
            "evaluation draws nothing random, so it changes nothing.", DefaultValueFactory = _ => 0UL };
        var data = CommonOptions.Data();
        var normalize = CommonOptions.Normalize();
        var command = new Command("eval",
            "Accuracy and confusion matrix of a saved model (and adapter) on the MNIST test set.")
        {
            model, adapter, digits, seed, data, normalize,
        };
        RecipeCommand.SetAction(command,
            parse => Run(context, parse.GetValue(model)!, parse.GetValue(adapter), parse.GetValue(digits),
            parse.GetValue(data), parse.GetValue(normalize)));
        return command;
    }

    private static Dictionary<string, object?> Run(CliContext context, string modelPath, string? adapterDir,
        DigitSet digits,
        string? dataDirectory, bool normalize)
    {
        Module model = ModelArguments.LoadBlogMlp(modelPath);
        if (adapterDir is not null) model = ModelArguments.LoadAdapter(model, adapterDir);
        LoadedMnist mnist = LoadedMnist.Load(context, dataDirectory, normalize);
        EvaluationResult result = ClassifierEvaluation.Evaluate(model, mnist.Test.Filter(digits));
        EvaluationReport.Print(context, $"{modelPath}{(adapterDir is null ? "" : " + " + adapterDir)}, test {digits}",
            result, digits);
        return EvaluationReport.ToJson(result);
    }
}
