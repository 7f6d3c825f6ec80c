using LoRA.Managed.Tensors;

namespace LoRA.Managed.IO;

public static partial class SafeTensors
{
    /// <summary>
    /// Loads a file into existing tensors without holding the file in memory: the header is read and checked against
    /// <paramref name="targets"/> first (every name present, none extra, every shape equal; nothing of the data is read
    /// before that), then every tensor's data is read once and checked finite, and only then read again straight into
    /// its target. So a file that does not fit, or holds a NaN, changes nothing, and the load's extra memory is one 64
    /// KiB buffer instead of the file's bytes and floats.
    /// </summary>
    /// <param name="path">The safetensors file.</param>
    /// <param name="targets">File key → the span its data goes to (and the shape it must have).</param>
    /// <returns>The file's metadata.</returns>
    /// <exception cref="InvalidDataFormatException">The file is malformed, a tensor is missing, unexpected, of another
    /// shape, or holds a NaN or infinity (named).</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static IReadOnlyDictionary<string, string> LoadInto(
        string path, IReadOnlyDictionary<string, (int[] Shape, Memory<float> Data)> targets)
    {
        ArgumentNullException.ThrowIfNull(targets);
        using var stream = InputFile.OpenRead(path);
        SafeTensorsHeader header = ReadHeader(stream, path);
        CheckFits(targets.ToDictionary(p => p.Key, p => p.Value.Shape, StringComparer.Ordinal), header.Shapes, path);
        RequireFinite(stream, header);
        foreach (var e in header.Entries) ReadTensor(stream, header, e, targets[e.Name].Data.Span);
        return header.Metadata;
    }

    /// <summary>Reads every tensor of <paramref name="header"/> in 64 KiB pieces and throws at the first NaN or
    /// infinity, naming the tensor.</summary>
    /// <exception cref="InvalidDataFormatException">A tensor holds a NaN or infinity.</exception>
    public static void RequireFinite(Stream stream, SafeTensorsHeader header)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(header);
        var floats = new float[ChunkBytes / 8];
        foreach (var e in header.Entries)
        {
            int perChunk = floats.Length;
            for (int done = 0; done < e.Count; done += perChunk)
            {
                int count = Math.Min(perChunk, e.Count - done);
                var piece = e with { Count = count, Begin = e.Begin + (long)done * DTypeSize(e.DType) };
                ReadTensor(stream, header, piece, floats.AsSpan(0, count));
                int bad = FiniteValues.IndexOfNonFinite(floats.AsSpan(0, count));
                if (bad >= 0)
                    throw Bad(header.Source, TensorField(e.Name), $"element {done + bad} is {floats[bad]}; weights " +
                        "must be finite.");
            }
        }
    }

    /// <summary>Checks that <paramref name="found"/> (shapes by name, e.g. a header's) has exactly the keys of
    /// <paramref name="expected"/>, each with the shape given there.</summary>
    /// <exception cref="InvalidDataFormatException">A tensor is missing, unexpected, or of another shape; the first
    /// such is named.</exception>
    internal static void CheckFits(
        IReadOnlyDictionary<string, int[]> expected, IReadOnlyDictionary<string, int[]> found, string file)
    {
        foreach (var (name, foundShape) in found.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (!expected.TryGetValue(name, out var shape))
                throw new InvalidDataFormatException(file, TensorField(name), "unexpected tensor; the model has " +
                    $"[{string.Join(", ", expected.Keys.Order(StringComparer.Ordinal))}].");
            if (!shape.AsSpan().SequenceEqual(foundShape))
                throw new InvalidDataFormatException(file, TensorField(name), $"shape {Shapes.Format(foundShape)} in " +
                    $"the file but {Shapes.Format(shape)} in the model.");
        }
        foreach (var name in expected.Keys.OrderBy(k => k, StringComparer.Ordinal))
            if (!found.ContainsKey(name))
                throw new InvalidDataFormatException(file, TensorField(name), "missing from the file.");
    }
}
