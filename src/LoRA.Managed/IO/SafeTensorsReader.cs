using LoRA.Managed.Tensors;

namespace LoRA.Managed.IO;

/// <summary>
/// A safetensors file opened for reading one tensor at a time: the header is read and validated on opening (as
/// <see cref="SafeTensors.ReadHeader(string)"/>), and <see cref="ReadInto"/> reads one tensor straight into a caller's
/// buffer (<see cref="SafeTensors.ReadTensor"/>), so loading a model never holds the file and its tensors at once. The
/// stream stays open, so a sharded model's files are each opened once.
/// </summary>
public sealed class SafeTensorsReader : IDisposable
{
    private readonly FileStream _stream;
    private readonly SafeTensorsHeader _header;
    private readonly Dictionary<string, SafeTensorsEntry> _entries;

    private SafeTensorsReader(string path)
    {
        Path = path;
        _stream = InputFile.OpenRead(path);
        try
        {
            _header = SafeTensors.ReadHeader(_stream, path);
            _entries = _header.Entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        }
        catch
        {
            _stream.Dispose();
            throw;
        }
    }

    /// <summary>Opens and validates the header of <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataFormatException">The header breaks the format; the message names the file and
    /// field.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static SafeTensorsReader Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return new SafeTensorsReader(path);
    }

    /// <summary>The file's path, as given.</summary>
    public string Path { get; }

    /// <summary>The <c>__metadata__</c> map.</summary>
    public IReadOnlyDictionary<string, string> Metadata => _header.Metadata;

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

    /// <summary>Reads tensor <paramref name="name"/>, converted to float32, into <paramref name="destination"/>
    /// (exactly its element count).</summary>
    /// <exception cref="ArgumentException">The destination's length is not the tensor's element count.</exception>
    public void ReadInto(string name, Span<float> destination) =>
        SafeTensors.ReadTensor(_stream, _header, Get(name), destination);

    /// <summary>Reads tensor <paramref name="name"/> into a new tensor of its shape.</summary>
    public Tensor Read(string name)
    {
        var t = new Tensor(Get(name).Shape);
        ReadInto(name, t.Data);
        return t;
    }

    private SafeTensorsEntry Get(string name) => _entries.TryGetValue(name, out var e)
        ? e : throw new KeyNotFoundException($"SafeTensorsReader: {Path} has no tensor '{name}'.");

    /// <inheritdoc />
    public void Dispose() => _stream.Dispose();
}
