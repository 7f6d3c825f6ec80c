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
    /// <exception cref="InvalidOperationException">A weight is stored quantised (it is not in the state_dict, so the
    /// file would lack it); the message names the module.</exception>
    public static void Save(Module model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        RequireFloatWeights(model, "ModelFile");
        SafeTensors.Write(path, model.StateDict(), new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>Refuses a model whose weights are not all float32 parameters: a weight stored quantised
    /// (<see cref="IQuantizableWeight"/>) has left the state_dict, and a file written from it would lack it.</summary>
    /// <exception cref="InvalidOperationException">Names the first such module and its storage.</exception>
    public static void RequireFloatWeights(Module model, string who)
    {
        ArgumentNullException.ThrowIfNull(model);
        foreach (var (name, module) in model.NamedModules())
            if (module is IQuantizableWeight { QuantizedWeight: { } q })
                throw new InvalidOperationException($"{who}: '{name}' holds its weight in {q.DType}, which a "
                    + "float32 file cannot take back; load the base with --base-dtype f32 and --embedding-dtype f32 "
                    + "to save it.");
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
