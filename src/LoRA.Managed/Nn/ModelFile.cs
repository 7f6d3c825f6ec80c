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
    /// model's parameter names with the same shapes, and finite values. Everything is checked before any parameter
    /// changes, the header before any data is read (<see cref="SafeTensors.LoadInto"/>), and the data is read straight
    /// into the parameters.
    /// </summary>
    /// <exception cref="InvalidDataFormatException">The file is malformed, or a tensor is missing, unexpected, of the
    /// wrong shape (named, with both shapes) or holds a NaN or infinity (named).</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static void Load(Module model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        SafeTensors.LoadInto(path, Targets(model.StateDict()));
    }

    /// <summary>The targets of <see cref="SafeTensors.LoadInto"/> for tensors by name.</summary>
    internal static Dictionary<string, (int[] Shape,
        Memory<float> Data)> Targets(IReadOnlyDictionary<string, Tensor> tensors) =>
        tensors.ToDictionary(p => p.Key, p => (p.Value.Shape, (Memory<float>)p.Value.Array), StringComparer.Ordinal);

    /// <summary>Throws when a parameter of <paramref name="model"/> holds a NaN or infinity; <paramref name="what"/>
    /// says whose (e.g. the merged model).</summary>
    /// <exception cref="ArithmeticException">The message names the parameter, the element and its value.</exception>
    public static void RequireFinite(Module model, string what)
    {
        ArgumentNullException.ThrowIfNull(model);
        foreach (var (name, p) in model.NamedParameters())
        {
            int i = FiniteValues.IndexOfNonFinite(p.Data);
            if (i >= 0)
                throw new ArithmeticException($"{what}: {name} element {i} is {p.Data[i]}; weights must be finite.");
        }
    }
}
