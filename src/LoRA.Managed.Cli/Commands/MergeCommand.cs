using System.CommandLine;
using LoRA.Managed.Nn;

namespace LoRA.Managed.Cli.Commands;

/// <summary>
/// <c>lora merge</c>: folds an adapter into its base (<c>W ← W + scale·B·A</c>, PEFT's <c>merge_and_unload</c>) and
/// saves a plain model with the original state_dict names: zero adapter overhead at inference. With a Hugging Face
/// model folder as <c>--model</c>, <c>--out</c> is a folder <c>from_pretrained</c> loads (same keys, config and
/// tokenizer files copied).
/// </summary>
internal static class MergeCommand
{
    public static Command Create(CliContext context)
    {
        var model = ModelArguments.Model();
        var adapter = ModelArguments.Adapter(required: true);
        var output = ModelArguments.Out("The merged model's safetensors file (a folder when --model is a " +
            "Hugging Face folder).");
        var command = new Command("merge",
            "Fold a LoRA adapter into its base model and save the result as a plain model.")
        {
            model, adapter, output,
        };
        RecipeCommand.SetAction(command,
            parse => Run(context, parse.GetValue(model)!, parse.GetValue(adapter)!, parse.GetValue(output)!),
            threads: false);
        return command;
    }

    private static Dictionary<string, object?> Run(CliContext context, string modelPath, string adapterDir,
        string outPath)
    {
        if (Directory.Exists(modelPath)) return RunHf(context, modelPath, adapterDir, outPath);
        ModelArguments.RequireWritableFile("--out", outPath);
        Module merged = ModelArguments.LoadAdapter(ModelArguments.LoadBlogMlp(modelPath), adapterDir).MergeAndUnload();
        // W + scale·B·A can overflow float32
        ModelFile.RequireFinite(merged, $"merge of {adapterDir} into {modelPath}");
        ModelFile.Save(merged, outPath);
        context.Output.WriteLine($"merged {adapterDir} into {modelPath}: {Path.GetFullPath(outPath)} " +
            $"({merged.ParameterCount():N0} parameters, names " +
            $"{string.Join(", ", merged.NamedParameters().Select(p => p.Key))})");
        return new Dictionary<string, object?> { ["out"] = Path.GetFullPath(outPath),
            ["params"] = merged.ParameterCount() };
    }

    private static Dictionary<string, object?> RunHf(CliContext context, string modelDir, string adapterDir,
        string outDir)
    {
        ModelArguments.RequireWritableDirectory("--out", outDir, createParents: true);
        var model = Models.Hf.HfModel.Load(modelDir);
        Lora.PeftModel.FromPretrained(model, adapterDir).MergeAndUnload();
        ModelFile.RequireFinite(model, $"merge of {adapterDir} into {modelDir}");
        Models.Hf.HfModelWriter.Save(model, outDir, modelDir);
        context.Output.WriteLine($"merged {adapterDir} into {modelDir}: {Path.GetFullPath(outDir)} " +
            $"({model.ParameterCount():N0} parameters, a Hugging Face folder)");
        return new Dictionary<string, object?> { ["out"] = Path.GetFullPath(outDir),
            ["params"] = model.ParameterCount() };
    }
}
