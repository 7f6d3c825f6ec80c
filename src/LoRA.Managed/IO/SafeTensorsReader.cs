using LoRA.Managed.Tensors;

namespace LoRA.Managed.IO;

/// <summary>
/// A safetensors file opened for reading one tensor at a time: the header is read and validated on opening (as
/// <see cref="SafeTensors.Read(string)"/> does), and <see cref="ReadInto"/> converts one tensor straight into a
/// caller's buffer through a small staging buffer, so loading a model never holds the file and its tensors at once.
/// </summary>
public sealed class SafeTensorsReader : IDisposable
{
    private const int StagingBytes = 1 << 20;
    private readonly FileStream _stream;
    private readonly Dictionary<string, SafeTensors.Entry> _entries;
    private readonly long _dataStart;
    private byte[]? _staging;

    private SafeTensorsReader(string path)
    {
        Path = path;
        _stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            var (entries, metadata, dataStart) = SafeTensors.ReadHeader(_stream, path);
            _entries = entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
            Metadata = metadata;
            _dataStart = dataStart;
        }
        catch
        {
            _stream.Dispose();
            throw;
        }
    }

    /// <summary>Opens and validates the header of <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataFormatException">The header breaks the format; the message names the file and field.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static SafeTensorsReader Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return new SafeTensorsReader(path);
    }

    /// <summary>The file's path, as given.</summary>
    public string Path { get; }

    /// <summary>The <c>__metadata__</c> map.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The tensor names, in header order.</summary>
    public IEnumerable<string> Names => _entries.Keys;

    /// <summary>True when the file holds <paramref name="name"/>.</summary>
    public bool Contains(string name) => _entries.ContainsKey(name);

    /// <summary>The stored shape of <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No such tensor.</exception>
    public int[] ShapeOf(string name) => Get(name).Shape;

    /// <summary>The stored dtype of <paramref name="name"/> (F32, F16, BF16, F64).</summary>
    /// <exception cref="KeyNotFoundException">No such tensor.</exception>
    public string DTypeOf(string name) => Get(name).DType;

    /// <summary>Reads tensor <paramref name="name"/>, converted to float32, into <paramref name="destination"/> (exactly its element count).</summary>
    /// <exception cref="ArgumentException">The destination's length is not the tensor's element count.</exception>
    public void ReadInto(string name, Span<float> destination)
    {
        SafeTensors.Entry e = Get(name);
        if (destination.Length != e.Count)
            throw new ArgumentException($"SafeTensorsReader: {Path}: '{name}' has {e.Count} elements ({Shapes.Format(e.Shape)}), the destination {destination.Length}.");
        int size = SafeTensors.ElementSize(e.DType), perChunk = StagingBytes / size;
        _staging ??= new byte[StagingBytes];
        _stream.Position = _dataStart + e.Begin;
        for (int done = 0; done < e.Count; done += perChunk)
        {
            int n = Math.Min(perChunk, e.Count - done);
            Span<byte> raw = _staging.AsSpan(0, n * size);
            _stream.ReadExactly(raw);
            SafeTensors.DecodeInto(raw, e.DType, destination.Slice(done, n));
        }
    }

    /// <summary>Reads tensor <paramref name="name"/> into a new tensor of its shape.</summary>
    public Tensor Read(string name)
    {
        var t = new Tensor(Get(name).Shape);
        ReadInto(name, t.Data);
        return t;
    }

    private SafeTensors.Entry Get(string name) => _entries.TryGetValue(name, out var e)
        ? e : throw new KeyNotFoundException($"SafeTensorsReader: {Path} has no tensor '{name}'.");

    /// <inheritdoc />
    public void Dispose() => _stream.Dispose();
}
