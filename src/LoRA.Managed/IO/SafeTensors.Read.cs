using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.IO;

/// <summary>
/// Hugging Face's safetensors format, written from its specification: an 8-byte little-endian u64 N, N
/// bytes of UTF-8 JSON <c>{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}</c>
/// with offsets relative to the first byte after the header, then the raw little-endian data.
/// </summary>
/// <remarks>
/// Reading validates everything before allocating tensor memory, with the reference implementation's rules:
/// header length within the file and at most <see cref="MaxHeaderBytes"/>; UTF-8 JSON (no invalid byte sequences, no
/// lone-surrogate escapes, nesting at most 8 deep) forming an object whose entries have the
/// expected types; known dtype names; shape products that match byte counts; and offsets that, sorted, tile
/// the data region exactly (no gap, no overlap, nothing after). F32, F16, BF16 and F64 are read (converted to
/// float32); other valid dtypes are refused. Every failure is an <see cref="InvalidDataFormatException"/>
/// naming the file and the field.
/// </remarks>
public static partial class SafeTensors
{
    /// <summary>The largest header accepted (the reference implementation's limit, 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";

    /// <summary>A valid header nests three levels (root, entry, shape/offsets array); anything far deeper is
    /// refused.</summary>
    private const int MaxHeaderDepth = 8;

    /// <summary>Reads and validates the file at <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataFormatException">The content breaks the format; the message names the file and
    /// field.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static SafeTensorsFile Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var stream = InputFile.OpenRead(path);
        return Read(stream, path);
    }

    /// <summary>Parses an in-memory file; <paramref name="source"/> names it in error messages.</summary>
    /// <exception cref="InvalidDataFormatException">The content breaks the format; the message names
    /// <paramref name="source"/> and the field.</exception>
    public static SafeTensorsFile Parse(byte[] bytes, string source = "<memory>")
    {
        ArgumentNullException.ThrowIfNull(bytes);
        using var stream = new MemoryStream(bytes, writable: false);
        return Read(stream, source);
    }

    /// <summary>Reads a whole safetensors file from a seekable stream positioned at its start.</summary>
    /// <exception cref="InvalidDataFormatException">The content breaks the format; the message names
    /// <paramref name="source"/> and the field.</exception>
    /// <exception cref="ArgumentException">The stream cannot read or seek.</exception>
    public static SafeTensorsFile Read(Stream stream, string source)
    {
        SafeTensorsHeader header = ReadHeader(stream, source);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var dtypes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var e in header.Entries)
        {
            var data = new float[e.Count];
            ReadTensor(stream, header, e, data);
            tensors[e.Name] = new Tensor(data, e.Shape);
            dtypes[e.Name] = e.DType;
        }
        return new SafeTensorsFile(tensors, header.Metadata, dtypes);
    }

    /// <summary>
    /// Reads and validates only the header of the file at <paramref name="path"/> (names, dtypes, shapes, offsets
    /// tiling the data region), reading none of the data: what a loader checks against its model before it reads
    /// anything else.
    /// </summary>
    /// <exception cref="InvalidDataFormatException">The header breaks the format, or the path is not a non-empty
    /// regular file.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static SafeTensorsHeader ReadHeader(string path)
    {
        using var stream = InputFile.OpenRead(path);
        return ReadHeader(stream, path);
    }

    /// <summary>Reads and validates the header of a safetensors file from a seekable stream positioned at its start;
    /// leaves the stream after the header.</summary>
    /// <exception cref="InvalidDataFormatException">The header breaks the format; the message names
    /// <paramref name="source"/> and the field.</exception>
    /// <exception cref="ArgumentException">The stream cannot read or seek.</exception>
    public static SafeTensorsHeader ReadHeader(Stream stream, string source)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(source);
        if (!stream.CanRead || !stream.CanSeek)
            throw new ArgumentException($"SafeTensors: the stream for {source} must be readable and seekable.",
                nameof(stream));
        long start = stream.Position;
        long fileLength = stream.Length - start;
        if (fileLength < 8)
            throw Bad(source, "header length",
                $"the file has {fileLength} bytes, fewer than the 8-byte header length.");
        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n > (ulong)MaxHeaderBytes)
            throw Bad(source, "header length", $"{n} bytes exceeds the {MaxHeaderBytes}-byte limit.");
        if ((long)n > fileLength - 8)
            throw Bad(source, "header length", $"{n} bytes but only {fileLength - 8} bytes follow the length field.");
        if (n < 2) throw Bad(source, "header", $"{n} bytes cannot hold a JSON object.");
        var header = new byte[n];
        stream.ReadExactly(header);
        long dataLength = fileLength - 8 - (long)n;

        var (entries, metadata) = ParseHeader(header, source);
        CheckLayout(entries, dataLength, source);
        return new SafeTensorsHeader(source, start + 8 + (long)n, entries, metadata);
    }

    /// <summary>
    /// Reads one tensor of a validated header straight into <paramref name="destination"/> (converted to float32): F32
    /// lands in place with no copy, the narrower and wider dtypes go through a 64 KiB buffer, so a load holds the
    /// destination floats and never the file's bytes as well.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> does not have the entry's element
    /// count.</exception>
    public static void ReadTensor(Stream stream, SafeTensorsHeader header, SafeTensorsEntry entry,
        Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(entry);
        if (destination.Length != entry.Count)
            throw new ArgumentException($"SafeTensors.ReadTensor: {entry.Name} has {entry.Count} elements but the " +
                $"destination holds {destination.Length}.", nameof(destination));
        stream.Position = header.DataStart + entry.Begin;
        if (entry.DType == "F32" && BitConverter.IsLittleEndian)
        {
            stream.ReadExactly(MemoryMarshal.AsBytes(destination));
            return;
        }
        int size = DTypeSize(entry.DType);
        int perChunk = ChunkBytes / size;
        byte[] buffer = new byte[Math.Min((long)perChunk, entry.Count) * size];
        for (int done = 0; done < entry.Count; done += perChunk)
        {
            int count = Math.Min(perChunk, entry.Count - done);
            Span<byte> raw = buffer.AsSpan(0, count * size);
            stream.ReadExactly(raw);
            Decode(raw, entry.DType, destination.Slice(done, count));
        }
    }

    /// <summary>The buffer through which non-F32 tensors are converted.</summary>
    private const int ChunkBytes = 1 << 16;

    private static (List<SafeTensorsEntry>, Dictionary<string, string>) ParseHeader(byte[] header, string source)
    {
        JsonDocument doc = StrictJson.Parse(header, source, "header", MaxHeaderDepth);
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw Bad(source, "header", $"expected a JSON object, found {doc.RootElement.ValueKind}.");
            var entries = new List<SafeTensorsEntry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name)) throw Bad(source, TensorField(prop.Name), "appears twice in the header.");
                if (prop.Name == MetadataKey)
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object)
                        throw Bad(source, MetadataKey, $"expected an object of strings, found {prop.Value.ValueKind}.");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String)
                            throw Bad(source, $"{MetadataKey}.{m.Name}",
                                $"expected a string, found {m.Value.ValueKind}.");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                entries.Add(ParseEntry(prop, source));
            }
            return (entries, metadata);
        }
    }

    private static SafeTensorsEntry ParseEntry(JsonProperty prop, string source)
    {
        string name = TensorField(prop.Name);
        JsonElement v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object)
            throw Bad(source, name, $"expected an object with dtype, shape and data_offsets, found {v.ValueKind}.");
        if (!v.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String)
            throw Bad(source, $"{name}.dtype", "missing or not a string.");
        string dtype = dtypeEl.GetString()!;
        int size = DTypeSize(dtype);
        if (size == 0) throw Bad(source, $"{name}.dtype", $"'{dtype}' is not a safetensors dtype.");
        if (dtype is not ("F32" or "F16" or "BF16" or "F64"))
            throw Bad(source, $"{name}.dtype",
                $"'{dtype}' is valid safetensors but cannot be read as float (supported: F32, F16, BF16, F64).");

        if (!v.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array)
            throw Bad(source, $"{name}.shape", "missing or not an array.");
        var shape = new List<int>();
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int dim) || dim < 0)
                throw Bad(source, $"{name}.shape",
                    $"dimension {StrictJson.Snippet(d)} is not a non-negative 32-bit integer.");
            shape.Add(dim);
        }
        if (shape.Count is < 1 or > 4)
            throw Bad(source, $"{name}.shape", $"rank {shape.Count} is not supported (tensors here have rank 1 to 4).");
        long count = 1;
        foreach (int d in shape)
        {
            count *= d;
            if (count > int.MaxValue)
                throw Bad(source, $"{name}.shape",
                    $"{Shapes.Format(shape.ToArray())} has more than {int.MaxValue} elements.");
        }

        if (!v.TryGetProperty("data_offsets", out var offEl) || offEl.ValueKind != JsonValueKind.Array
            || offEl.GetArrayLength() != 2)
            throw Bad(source, $"{name}.data_offsets", "missing or not an array of two integers.");
        long[] off = new long[2];
        for (int i = 0; i < 2; i++)
        {
            var o = offEl[i];
            if (o.ValueKind != JsonValueKind.Number || !o.TryGetInt64(out off[i]) || off[i] < 0)
                throw Bad(source, $"{name}.data_offsets",
                    $"offset {StrictJson.Snippet(o)} is not a non-negative 64-bit integer.");
        }
        if (off[1] < off[0]) throw Bad(source, $"{name}.data_offsets", $"end {off[1]} is before begin {off[0]}.");
        if (off[1] - off[0] != count * size)
            throw Bad(source, $"{name}.data_offsets",
                $"[{off[0]}, {off[1]}] spans {off[1] - off[0]} bytes but {dtype} shape " +
                $"{Shapes.Format(shape.ToArray())} needs {count * size}.");
        return new SafeTensorsEntry(prop.Name, dtype, shape.ToArray(), (int)count, off[0], off[1]);
    }

    /// <summary>Sorted by offset, the tensors must tile [0, dataLength) exactly, as the reference reader
    /// requires.</summary>
    private static void CheckLayout(List<SafeTensorsEntry> entries, long dataLength, string source)
    {
        long expected = 0;
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.Begin != expected)
                throw Bad(source, $"{TensorField(e.Name)}.data_offsets",
                    e.Begin < expected ? $"[{e.Begin}, {e.End}] overlaps the previous tensor, which ends at {expected}."
                                       : $"[{e.Begin}, {e.End}] leaves a gap after byte {expected}.");
            if (e.End > dataLength)
                throw Bad(source, $"{TensorField(e.Name)}.data_offsets",
                    $"[{e.Begin}, {e.End}] runs past the data region of {dataLength} bytes.");
            expected = e.End;
        }
        if (expected != dataLength)
            throw Bad(source, "data", $"the tensors cover {expected} bytes but {dataLength} bytes follow the header.");
    }

    /// <summary>Bytes per element of every safetensors dtype; 0 for an unknown name.</summary>
    private static int DTypeSize(string dtype) => dtype switch
    {
        "BOOL" or "U8" or "I8" or "F8_E5M2" or "F8_E4M3" => 1,
        "I16" or "U16" or "F16" or "BF16" => 2,
        "I32" or "U32" or "F32" => 4,
        "I64" or "U64" or "F64" => 8,
        _ => 0,
    };

    /// <summary>Converts little-endian raw elements to float32 into <paramref name="dst"/> (one element per
    /// slot).</summary>
    internal static void Decode(ReadOnlySpan<byte> raw, string dtype, Span<float> dst)
    {
        int count = dst.Length;
        switch (dtype)
        {
            case "F32":
                if (BitConverter.IsLittleEndian) MemoryMarshal.Cast<byte, float>(raw[..(4 * count)]).CopyTo(dst);
                else for (int i = 0; i < count; i++) dst[i] = BinaryPrimitives.ReadSingleLittleEndian(raw[(4 * i)..]);
                break;
            case "F16":
                for (int i = 0; i < count; i++) dst[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(raw[(2 * i)..]);
                break;
            case "BF16":
                // bfloat16 is the top half of an IEEE float32: shift its bits into place.
                for (int i = 0; i < count; i++)
                    dst[i] = BitConverter.Int32BitsToSingle(
                        BinaryPrimitives.ReadUInt16LittleEndian(raw[(2 * i)..]) << 16);
                break;
            case "F64":
                for (int i = 0; i < count; i++) dst[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(raw[(8 * i)..]);
                break;
            default:
                throw new ArgumentException($"SafeTensors.Decode: unsupported dtype {dtype}.");
        }
    }

    /// <summary>A tensor name as an error's field: the empty name (valid in the format) is shown as <c>""</c> so the
    /// field is never blank.</summary>
    internal static string TensorField(string name) => name.Length == 0 ? "\"\"" : name;

    private static InvalidDataFormatException Bad(string file, string field, string problem, Exception? inner = null) =>
        new(file, field, problem, inner);
}
