namespace LoRA.Managed.IO;

/// <summary>One tensor as a safetensors header describes it: dtype, shape and byte range within the data
/// region.</summary>
/// <param name="Name">The tensor's name.</param>
/// <param name="DType">The stored dtype (F32, F16, BF16 or F64: the ones read as float).</param>
/// <param name="Shape">The shape, rank 1 to 4.</param>
/// <param name="Count">Elements (the shape's product).</param>
/// <param name="Begin">First byte, relative to the data region.</param>
/// <param name="End">One past the last byte.</param>
public sealed record SafeTensorsEntry(string Name, string DType, int[] Shape, int Count, long Begin, long End);

/// <summary>
/// A validated safetensors header (<see cref="SafeTensors.ReadHeader(string)"/>): every entry's name, dtype, shape and
/// offsets, which tile the data region exactly, and the metadata. Nothing of the data has been read.
/// </summary>
public sealed class SafeTensorsHeader
{
    internal SafeTensorsHeader(string source, long dataStart, IReadOnlyList<SafeTensorsEntry> entries,
        IReadOnlyDictionary<string, string> metadata)
    {
        Source = source;
        DataStart = dataStart;
        Entries = entries;
        Metadata = metadata;
        Shapes = entries.ToDictionary(e => e.Name, e => e.Shape, StringComparer.Ordinal);
    }

    /// <summary>The file (or caller-given name) the header came from.</summary>
    public string Source { get; }

    /// <summary>Stream position of the data region's first byte.</summary>
    public long DataStart { get; }

    /// <summary>The tensors, in header order.</summary>
    public IReadOnlyList<SafeTensorsEntry> Entries { get; }

    /// <summary>Each tensor's shape by name.</summary>
    public IReadOnlyDictionary<string, int[]> Shapes { get; }

    /// <summary>The <c>__metadata__</c> map (empty when the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }
}
