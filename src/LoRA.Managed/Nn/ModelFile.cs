using LoRA.Managed.IO;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Nn;

/// <summary>
/// A whole model's parameters as a safetensors file under PyTorch's <c>state_dict</c> names
/// (<c>layers.1.weight</c>, ...), so <c>safetensors.torch.load_file</c> + <c>load_state_dict</c> read it.
/// </summary>
public static class ModelFile
{
    /// <summary>
    /// Writes every parameter of <paramref name="model"/> to <paramref name="path"/>, metadata <c>{"format": "pt"}</c>,
    /// atomically through <see cref="AtomicFile"/>: a failure leaves any previous file as it was.
    /// </summary>
    public static void Save(Module model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        SafeTensors.Write(path, model.StateDict(), new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>
    /// Loads <paramref name="path"/> into <paramref name="model"/>, strictly: the file must hold exactly the
    /// model's parameter names with the same shapes. Everything is checked before any parameter changes.
    /// </summary>
    /// <exception cref="InvalidDataFormatException">The file is malformed, or a tensor is missing, unexpected or of the wrong shape (named, with both shapes).</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static void Load(Module model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        var file = SafeTensors.Read(path);
        var mine = model.StateDict();
        CheckFits(mine, file.Tensors, path);
        foreach (var (name, t) in file.Tensors) t.Data.CopyTo(mine[name].Data);
    }

    /// <summary>Checks that <paramref name="found"/> has exactly the keys and shapes of <paramref name="expected"/>.</summary>
    /// <exception cref="InvalidDataFormatException">A tensor is missing, unexpected, or of another shape; the first such is named.</exception>
    internal static void CheckFits(IReadOnlyDictionary<string, Tensor> expected, IReadOnlyDictionary<string, Tensor> found, string file) =>
        CheckFits(expected.ToDictionary(p => p.Key, p => p.Value.Shape, StringComparer.Ordinal), found, file);

    /// <summary>Checks that <paramref name="found"/> has exactly the keys of <paramref name="expected"/>, each with the shape given there.</summary>
    /// <exception cref="InvalidDataFormatException">A tensor is missing, unexpected, or of another shape; the first such is named.</exception>
    internal static void CheckFits(IReadOnlyDictionary<string, int[]> expected, IReadOnlyDictionary<string, Tensor> found, string file)
    {
        foreach (var (name, t) in found.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (!expected.TryGetValue(name, out var shape))
                throw new InvalidDataFormatException(file, SafeTensors.TensorField(name), $"unexpected tensor; the model has [{string.Join(", ", expected.Keys.Order(StringComparer.Ordinal))}].");
            if (!shape.AsSpan().SequenceEqual(t.Shape))
                throw new InvalidDataFormatException(file, SafeTensors.TensorField(name), $"shape {Shapes.Format(t.Shape)} in the file but {Shapes.Format(shape)} in the model.");
        }
        foreach (var name in expected.Keys.OrderBy(k => k, StringComparer.Ordinal))
            if (!found.ContainsKey(name))
                throw new InvalidDataFormatException(file, SafeTensors.TensorField(name), "missing from the file.");
    }
}
