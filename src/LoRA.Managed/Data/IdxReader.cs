using System.Buffers.Binary;
using System.IO.Compression;

namespace LoRA.Managed.Data;

/// <summary>
/// Reads IDX files, the format of MNIST (<c>train-images-idx3-ubyte</c> and friends): a 4-byte big-endian
/// magic (<c>0x00 0x00</c>, a type code, the number of dimensions), one big-endian 32-bit size per
/// dimension, then the data row-major. Files may be raw or gzip-compressed; compression is detected by
/// the gzip magic <c>1f 8b</c>, not by the file name.
/// </summary>
/// <remarks>
/// The sizes in the header are untrusted: they are checked against the (decompressed) length of the
/// file before anything is allocated from them, so a corrupt header gives an <see cref="IdxFormatException"/>
/// naming the field instead of an out-of-memory error or a half-read array.
/// </remarks>
public static class IdxReader
{
    /// <summary>Magic of an image file: unsigned bytes (type 0x08), 3 dimensions (count, rows, columns).</summary>
    public const int ImagesMagic = 0x00000803; // 2051

    /// <summary>Magic of a label file: unsigned bytes (type 0x08), 1 dimension (count).</summary>
    public const int LabelsMagic = 0x00000801; // 2049

    private const byte UnsignedByteType = 0x08;

    /// <summary>Reads an image file (magic 2051).</summary>
    /// <exception cref="IdxFormatException">The header or length is wrong.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static IdxImages ReadImages(string path)
    {
        using Stream content = OpenContent(path);
        return ReadImages(content, path);
    }

    /// <summary>Reads an image file's content (already decompressed) from a seekable stream; <paramref name="name"/> is used in errors.</summary>
    /// <exception cref="IdxFormatException">The header or length is wrong.</exception>
    public static IdxImages ReadImages(Stream content, string name)
    {
        var dims = ReadHeader(content, name, 3, ImagesMagic);
        var pixels = new byte[(long)dims[0] * dims[1] * dims[2]];
        content.ReadExactly(pixels);
        return new IdxImages(dims[0], dims[1], dims[2], pixels);
    }

    /// <summary>Reads a label file (magic 2049): one byte per item.</summary>
    /// <exception cref="IdxFormatException">The header or length is wrong.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static byte[] ReadLabels(string path)
    {
        using Stream content = OpenContent(path);
        return ReadLabels(content, path);
    }

    /// <summary>Reads a label file's content (already decompressed) from a seekable stream; <paramref name="name"/> is used in errors.</summary>
    /// <exception cref="IdxFormatException">The header or length is wrong.</exception>
    public static byte[] ReadLabels(Stream content, string name)
    {
        var dims = ReadHeader(content, name, 1, LabelsMagic);
        var labels = new byte[dims[0]];
        content.ReadExactly(labels);
        return labels;
    }

    /// <summary>True when the file starts with the gzip magic bytes <c>1f 8b</c>.</summary>
    public static bool IsGzip(string path)
    {
        using var file = File.OpenRead(path);
        Span<byte> head = stackalloc byte[2];
        return file.ReadAtLeast(head, 2, throwOnEndOfStream: false) == 2 && head[0] == 0x1f && head[1] == 0x8b;
    }

    /// <summary>
    /// Opens the file's content as a seekable stream with a known length: the file itself when raw,
    /// the whole decompressed content in memory when gzip-compressed (the decompressed length cannot be
    /// trusted from the gzip trailer, so it is measured).
    /// </summary>
    internal static Stream OpenContent(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"IDX file not found: {path}", path);
        if (!IsGzip(path)) return File.OpenRead(path);
        using var file = File.OpenRead(path);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        var buffer = new MemoryStream(capacity: (int)Math.Min(file.Length * 4, Array.MaxLength));
        try
        {
            gzip.CopyTo(buffer);
        }
        catch (InvalidDataException e)
        {
            throw new IdxFormatException(path, "gzip stream", e.Message);
        }
        catch (IOException e) when (buffer.Length >= Array.MaxLength - 1)
        {
            throw new IdxFormatException(path, "length", $"decompresses to more than {Array.MaxLength:N0} bytes ({e.Message}).");
        }
        buffer.Position = 0;
        return buffer;
    }

    /// <summary>
    /// Reads and validates the header: magic, type, dimension count, every dimension, and that the data
    /// the dimensions promise fills the rest of the stream exactly. Leaves the stream at the first data byte.
    /// </summary>
    private static int[] ReadHeader(Stream content, string name, int expectedDims, int expectedMagic)
    {
        ArgumentNullException.ThrowIfNull(content);
        long length = content.Length - content.Position;
        int headerBytes = 4 + 4 * expectedDims;
        if (length < 4)
            throw new IdxFormatException(name, "length", $"the file has {length} bytes, too short for the 4-byte magic.");

        Span<byte> header = stackalloc byte[4 + 4 * 3];
        content.ReadExactly(header[..4]);
        int magic = BinaryPrimitives.ReadInt32BigEndian(header);
        string kind = expectedMagic == ImagesMagic ? "images" : "labels";
        if (header[0] != 0 || header[1] != 0)
            throw new IdxFormatException(name, "magic", $"expected {expectedMagic} ({kind}) but found 0x{magic:x8}; not an IDX file.");
        if (header[2] != UnsignedByteType)
            throw new IdxFormatException(name, "data type", $"expected 0x08 (unsigned byte) but found 0x{header[2]:x2} (magic {magic}).");
        if (header[3] != expectedDims)
            throw new IdxFormatException(name, "dimension count", $"expected {expectedDims} ({kind}, magic {expectedMagic}) but found {header[3]} (magic {magic}).");

        if (length < headerBytes)
            throw new IdxFormatException(name, "length", $"the file has {length} bytes, shorter than the {headerBytes}-byte header.");
        content.ReadExactly(header[4..headerBytes]);
        var dims = new int[expectedDims];
        for (int d = 0; d < expectedDims; d++)
        {
            uint size = BinaryPrimitives.ReadUInt32BigEndian(header[(4 + 4 * d)..]);
            if (size > int.MaxValue)
                throw new IdxFormatException(name, d == 0 ? "item count" : $"dimension {d}", $"{size} is larger than {int.MaxValue}.");
            dims[d] = (int)size;
        }

        // The product of three 31-bit sizes can overflow a long; 128-bit arithmetic cannot.
        long available = length - headerBytes;
        UInt128 promised = 1;
        foreach (int size in dims) promised *= (uint)size;
        string shape = string.Join("×", dims);
        if (promised > (UInt128)available)
            throw new IdxFormatException(name, "item count",
                $"the header promises {shape} = {promised:N0} data bytes but only {available:N0} follow the {headerBytes}-byte header (file truncated?).");
        long dataBytes = (long)promised;
        if (dataBytes > Array.MaxLength)
            throw new IdxFormatException(name, "length", $"{dataBytes:N0} data bytes do not fit in one array.");
        if (dataBytes < available)
            throw new IdxFormatException(name, "length",
                $"the header promises {shape} = {dataBytes:N0} data bytes but {available:N0} follow the {headerBytes}-byte header ({available - dataBytes:N0} extra).");
        return dims;
    }
}
