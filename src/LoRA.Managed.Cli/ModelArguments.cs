using System.CommandLine;
using LoRA.Managed.IO;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Cli;

/// <summary>The <c>--model</c> and <c>--adapter</c> options of the commands that work on saved files, and loading them.</summary>
internal static class ModelArguments
{
    public static Option<string> Model(string description = "The base model, a safetensors file with the blog MLP's state_dict names (layers.1.weight, ...).") =>
        new("--model") { Description = description, Required = true, HelpName = "FILE" };

    public static Option<string?> Adapter(bool required) =>
        new("--adapter") { Description = "An adapter directory in PEFT's layout (adapter_model.safetensors + adapter_config.json).", Required = required, HelpName = "DIR" };

    public static Option<string> Out(string description) =>
        new("--out") { Description = description, Required = true, HelpName = "PATH" };

    /// <summary>Loads the blog MLP from <paramref name="path"/>; shapes and names are checked before anything is changed.</summary>
    public static Mlp LoadBlogMlp(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"--model {path}: no such file.", path);
        var model = Mlp.Blog(new TorchGenerator(0));
        ModelFile.Load(model, path);
        return model;
    }

    /// <summary>Loads an adapter onto <paramref name="model"/>.</summary>
    public static PeftModel LoadAdapter(Module model, string directory)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"--adapter {directory}: no such directory.");
        return LoraModel.LoadAdapter(model, directory);
    }

    /// <summary>Where a file will be written must exist as a directory; say so before any work starts.</summary>
    public static void RequireParentDirectory(string option, string path)
    {
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null && !Directory.Exists(dir))
            throw new DirectoryNotFoundException($"{option} {path}: directory {dir} does not exist.");
    }
}
