using System.CommandLine;
using LoRA.Managed.Models;
using LoRA.Managed.IO;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Cli;

/// <summary>The <c>--model</c> and <c>--adapter</c> options of the commands that work on saved files, and loading
/// them.</summary>
internal static class ModelArguments
{
    public static Option<string> Model(string description = "The base model, a safetensors file with the blog MLP's " +
        "state_dict names (layers.1.weight, ...).") =>
        CommonOptions.NonEmptyPath(new Option<string>("--model") { Description = description, Required = true,
            HelpName = "FILE" });

    public static Option<string?> Adapter(bool required) =>
        CommonOptions.NonEmptyPath(new Option<string?>("--adapter") { Description = "An adapter directory in PEFT's " +
            "layout (adapter_model.safetensors + adapter_config.json).", Required = required, HelpName = "DIR" });

    public static Option<string> Out(string description) =>
        CommonOptions.NonEmptyPath(new Option<string>("--out") { Description = description, Required = true,
            HelpName = "PATH" });

    /// <summary>Loads the blog MLP from <paramref name="path"/>; shapes and names are checked before anything is
    /// changed.</summary>
    public static Mlp LoadBlogMlp(string path)
    {
        if (Directory.Exists(path))
            throw new FileNotFoundException($"--model {path}: is a directory; give the model's " +
                ".safetensors file.", path);
        if (!File.Exists(path)) throw new FileNotFoundException($"--model {path}: no such file.", path);
        InputFile.RequireRegular(path);
        var model = Mlp.Blog(new TorchGenerator(0));
        ModelFile.Load(model, path);
        return model;
    }

    /// <summary>Loads an adapter onto <paramref name="model"/>.</summary>
    public static PeftModel LoadAdapter(Module model, string directory)
    {
        RequireAdapterDirectory(directory);
        return PeftModel.FromPretrained(model, directory);
    }

    /// <summary>Refuses an <c>--adapter</c> that is not a directory holding PEFT's two files, naming what is
    /// wrong.</summary>
    public static void RequireAdapterDirectory(string directory)
    {
        if (File.Exists(directory))
            throw new DirectoryNotFoundException($"--adapter {directory}: is a file; give the adapter's directory " +
                "(adapter_model.safetensors + adapter_config.json).");
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"--adapter {directory}: no such directory.");
        foreach (string file in new[] { AdapterFiles.WeightsFileName, AdapterConfigFile.FileName })
            if (!File.Exists(Path.Combine(directory, file)))
                throw new FileNotFoundException($"--adapter {directory}: {file} is missing; an adapter directory " +
                    $"holds {AdapterFiles.WeightsFileName} and {AdapterConfigFile.FileName}.");
    }

    /// <summary>
    /// A file will be written at <paramref name="path"/> (<see cref="OutputPath.RequireWritableFile"/>: not a
    /// directory, link or device, a name short enough, an existing, writable folder). Checked before any work starts.
    /// </summary>
    public static void RequireWritableFile(string option, string path) =>
        Prefixed(option, () => OutputPath.RequireWritableFile(path));

    /// <summary>A directory will be written at <paramref name="path"/>: not a file, its parent (or, with
    /// <paramref name="createParents"/>, an ancestor) exists and is writable.</summary>
    public static void RequireWritableDirectory(string option, string path, bool createParents = false) =>
        Prefixed(option, () => OutputPath.RequireWritableDirectory(path, createParents));

    private static void Prefixed(string option, Action check)
    {
        try { check(); }
        catch (IOException e) { throw new IOException($"{option} {e.Message}", e); }
    }
}
