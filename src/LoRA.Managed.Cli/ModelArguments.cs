using System.CommandLine;
using LoRA.Managed.Models;
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
        if (Directory.Exists(path)) throw new FileNotFoundException($"--model {path}: is a directory; give the model's .safetensors file.", path);
        if (!File.Exists(path)) throw new FileNotFoundException($"--model {path}: no such file.", path);
        var model = Mlp.Blog(new TorchGenerator(0));
        ModelFile.Load(model, path);
        return model;
    }

    /// <summary>Loads an adapter onto <paramref name="model"/>.</summary>
    public static PeftModel LoadAdapter(Module model, string directory)
    {
        if (File.Exists(directory)) throw new DirectoryNotFoundException($"--adapter {directory}: is a file; give the adapter's directory (adapter_model.safetensors + adapter_config.json).");
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"--adapter {directory}: no such directory.");
        foreach (string file in new[] { AdapterFiles.WeightsFileName, AdapterConfigFile.FileName })
            if (!File.Exists(Path.Combine(directory, file)))
                throw new FileNotFoundException($"--adapter {directory}: {file} is missing; an adapter directory holds {AdapterFiles.WeightsFileName} and {AdapterConfigFile.FileName}.");
        return LoraModel.LoadAdapter(model, directory);
    }

    /// <summary>A file will be written at <paramref name="path"/>: it must not be a directory, and its folder must exist. Checked before any work starts.</summary>
    public static void RequireWritableFile(string option, string path)
    {
        if (Directory.Exists(path)) throw new IOException($"{option} {path}: is a directory; give a file path.");
        RequireParentDirectory(option, path);
    }

    /// <summary>A directory will be written at <paramref name="path"/>: it must not be an existing file, and its parent must exist.</summary>
    public static void RequireWritableDirectory(string option, string path)
    {
        if (File.Exists(path)) throw new IOException($"{option} {path}: is a file; give a directory path.");
        RequireParentDirectory(option, path);
    }

    /// <summary>Where a file will be written must exist as a directory; say so before any work starts.</summary>
    public static void RequireParentDirectory(string option, string path)
    {
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null && !Directory.Exists(dir))
            throw new DirectoryNotFoundException($"{option} {path}: directory {dir} does not exist.");
    }
}
