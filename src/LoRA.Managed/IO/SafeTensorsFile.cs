using LoRA.Managed.Tensors;

namespace LoRA.Managed.IO;

/// <summary>The content of a safetensors file: tensors by name (converted to float32) and the free-form
/// metadata.</summary>
public sealed class SafeTensorsFile
{
    /// <summary>Creates the content from already validated parts.</summary>
    public SafeTensorsFile(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string> metadata,
        IReadOnlyDictionary<string, string> dtypes)
    {
        Tensors = tensors ?? throw new ArgumentNullException(nameof(tensors));
        Metadata = metadata ?? throw new ArgumentNullException(nameof(metadata));
        DTypes = dtypes ?? throw new ArgumentNullException(nameof(dtypes));
    }

    /// <summary>The tensors by name, as float32 whatever their stored dtype.</summary>
    public IReadOnlyDictionary<string, Tensor> Tensors { get; }

    /// <summary>The <c>__metadata__</c> map (empty when the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Each tensor's dtype as stored in the file (<c>F32</c>, <c>F16</c>, <c>BF16</c>, <c>F64</c>).</summary>
    public IReadOnlyDictionary<string, string> DTypes { get; }
}
