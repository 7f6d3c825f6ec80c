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
/// The sizes in the header are untrusted. A raw file's header is checked against the file's length before
/// anything is allocated from it, so the data array is exactly the bytes that are there. A gzip file's
/// decompressed length is unknown until it has been decompressed (its trailer is not trusted either), so the
/// data is read in chunks that grow, doubling from 64 KiB, only as decompressed bytes actually arrive: a
/// small file whose header promises gigabytes costs at most one chunk before it is refused. Every problem is
/// an <see cref="IdxFormatException"/> (an <see cref="IO.InvalidDataFormatException"/>) naming the file and field.
/// </remarks>
public static class IdxReader
{
    /// <summary>Magic of an image file: unsigned bytes (type 0x08), 3 dimensions (count, rows, columns).</summary>
    public const int ImagesMagic = 0x00000803; // 2051

    /// <summary>Magic of a label file: unsigned bytes (type 0x08), 1 dimension (count).</summary>
    public const int LabelsMagic = 0x00000801; // 2049

    private const byte UnsignedByteType = 0x08;

    /// <summary>First buffer for data of unknown length (gzip); it doubles as data arrives.</summary>
    private const int FirstChunk = 1 << 16;

    /// <summary>How many trailing bytes of a gzip file are counted for the error message before giving up
    /// counting.</summary>
    private const int ExtraBytesCounted = 1 << 20;

    /// <summary>Reads an image file (magic 2051), raw or gzip.</summary>
    /// <exception cref="IdxFormatException">The header, the length or the gzip stream is wrong; the message names the
    /// file and field.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static IdxImages ReadImages(string path)
    {
        using var file = OpenFile(path);
        return ReadImages(file, path);
    }

    /// <summary>
    /// Reads an image file's content, raw or gzip, from a readable, seekable stream positioned at its start;
    /// <paramref name="name"/> is used in errors.
    /// </summary>
    /// <exception cref="IdxFormatException">The header, the length or the gzip stream is wrong; the message names
    /// <paramref name="name"/> and the field.</exception>
    /// <exception cref="ArgumentException">The stream cannot read or seek.</exception>
    public static IdxImages ReadImages(Stream content, string name)
    {
        var (dims, pixels) = Read(content, name, 3, ImagesMagic);
        return new IdxImages(dims[0], dims[1], dims[2], pixels);
    }

    /// <summary>Reads a label file (magic 2049), raw or gzip: one byte per item.</summary>
    /// <exception cref="IdxFormatException">The header, the length or the gzip stream is wrong; the message names the
    /// file and field.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static byte[] ReadLabels(string path)
    {
        using var file = OpenFile(path);
        return ReadLabels(file, path);
    }

    /// <summary>
    /// Reads a label file's content, raw or gzip, from a readable, seekable stream positioned at its start;
    /// <paramref name="name"/> is used in errors.
    /// </summary>
    /// <exception cref="IdxFormatException">The header, the length or the gzip stream is wrong; the message names
    /// <paramref name="name"/> and the field.</exception>
    /// <exception cref="ArgumentException">The stream cannot read or seek.</exception>
    public static byte[] ReadLabels(Stream content, string name) => Read(content, name, 1, LabelsMagic).Data;

    /// <summary>True when the file starts with the gzip magic bytes <c>1f 8b</c>.</summary>
    public static bool IsGzip(string path)
    {
        using var file = OpenFile(path);
        return IsGzip(file);
    }

    /// <summary>
    /// The file's content as a forward-only stream: the file itself when raw, a decompressing stream when
    /// gzip. Nothing is buffered, so a huge decompressed length costs time, not memory. Reads from a corrupt
    /// gzip stream throw <see cref="InvalidDataException"/>.
    /// </summary>
    internal static Stream OpenDecompressed(string path)
    {
        var file = OpenFile(path);
        return IsGzip(file) ? new GZipStream(file, CompressionMode.Decompress, leaveOpen: false) : file;
    }

    private static FileStream OpenFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new FileNotFoundException($"IDX file not found: {path}", path);
        return IO.InputFile.OpenRead(path);
    }

    /// <summary>Peeks at the first two bytes of a seekable stream and puts the position back.</summary>
    private static bool IsGzip(Stream stream)
    {
        long start = stream.Position;
        Span<byte> head = stackalloc byte[2];
        int got = stream.ReadAtLeast(head, 2, throwOnEndOfStream: false);
        stream.Position = start;
        return got == 2 && head[0] == 0x1f && head[1] == 0x8b;
    }

    private static (int[] Dims, byte[] Data) Read(Stream content, string name, int expectedDims, int expectedMagic)
    {
        ArgumentNullException.ThrowIfNull(content);
        ArgumentNullException.ThrowIfNull(name);
        if (!content.CanRead || !content.CanSeek)
            throw new ArgumentException($"IdxReader: the stream for {name} must be readable and seekable.",
                nameof(content));
        if (!IsGzip(content))
            return ReadIdx(content, content.Length - content.Position, name, expectedDims, expectedMagic);

        using var gzip = new GZipStream(content, CompressionMode.Decompress, leaveOpen: true);
        try
        {
            return ReadIdx(gzip, knownLength: -1, name, expectedDims, expectedMagic);
        }
        catch (InvalidDataException e)
        {
            throw new IdxFormatException(name, "gzip stream", $"the compressed data is corrupt ({e.Message}).", e);
        }
    }

    /// <summary>
    /// Reads and validates the header (magic, type, dimension count, every dimension, the image size), then
    /// the data the dimensions promise, which must fill the rest of the content exactly.
    /// <paramref name="knownLength"/> is the content's length, or −1 when it is unknown (gzip).
    /// </summary>
    private static (int[] Dims, byte[] Data) ReadIdx(Stream s, long knownLength, string name, int expectedDims,
        int expectedMagic)
    {
        int headerBytes = 4 + 4 * expectedDims;
        string what = knownLength < 0 ? "the decompressed content" : "the file";
        Span<byte> header = stackalloc byte[4 + 4 * 3];
        int got = s.ReadAtLeast(header[..4], 4, throwOnEndOfStream: false);
        if (got < 4)
            throw new IdxFormatException(name, "length", $"{what} has {got} bytes, too short for the 4-byte magic.");

        int magic = BinaryPrimitives.ReadInt32BigEndian(header);
        string kind = expectedMagic == ImagesMagic ? "images" : "labels";
        if (header[0] != 0 || header[1] != 0)
            throw new IdxFormatException(name, "magic",
                $"expected {expectedMagic} ({kind}) but found 0x{magic:x8}; not an IDX file.");
        if (header[2] != UnsignedByteType)
            throw new IdxFormatException(name, "data type",
                $"expected 0x08 (unsigned byte) but found 0x{header[2]:x2} (magic {magic}).");
        if (header[3] != expectedDims)
            throw new IdxFormatException(name, "dimension count",
                $"expected {expectedDims} ({kind}, magic {expectedMagic}) but found {header[3]} (magic {magic}).");

        got = s.ReadAtLeast(header[4..headerBytes], headerBytes - 4, throwOnEndOfStream: false);
        if (got < headerBytes - 4)
            throw new IdxFormatException(name, "length",
                $"{what} has {4 + got} bytes, shorter than the {headerBytes}-byte header.");
        var dims = new int[expectedDims];
        for (int d = 0; d < expectedDims; d++)
        {
            uint size = BinaryPrimitives.ReadUInt32BigEndian(header[(4 + 4 * d)..]);
            if (size > int.MaxValue)
                throw new IdxFormatException(name, d == 0 ? "item count" : $"dimension {d}",
                    $"{size} is larger than {int.MaxValue}.");
            dims[d] = (int)size;
        }
        string shape = string.Join("×", dims);

        // The product of three 31-bit sizes can overflow a long; 128-bit arithmetic cannot.
        UInt128 promised = 1;
        foreach (int size in dims) promised *= (uint)size;
        if (knownLength >= 0)
        {
            long available = knownLength - headerBytes;
            if (promised > (UInt128)available)
                throw new IdxFormatException(name, "item count",
                    $"the header promises {shape} = {promised:N0} data bytes but only {available:N0} follow the " +
                    $"{headerBytes}-byte header (file truncated?).");
            if (promised < (UInt128)available)
                throw new IdxFormatException(name, "length",
                    $"the header promises {shape} = {promised:N0} data bytes but {available:N0} follow the " +
                    $"{headerBytes}-byte header ({(UInt128)available - promised:N0} extra).");
        }
        // rows·columns must fit an int even for zero images: IdxImages.ImageSize and every consumer index with it.
        if (expectedDims == 3 && (long)dims[1] * dims[2] > int.MaxValue)
            throw new IdxFormatException(name, "image size",
                $"{dims[1]}×{dims[2]} = {(long)dims[1] * dims[2]:N0} pixels per image is more than {int.MaxValue:N0}.");
        if (promised > (UInt128)Array.MaxLength)
            throw new IdxFormatException(name, "length",
                $"{shape} = {promised:N0} data bytes do not fit in one array.");

        int dataBytes = (int)promised;
        if (knownLength >= 0)
        {
            var exact = new byte[dataBytes];
            s.ReadExactly(exact);
            return (dims, exact);
        }
        return (dims, ReadGrowing(s, dataBytes, name, shape, headerBytes));
    }

    /// <summary>
    /// Reads exactly <paramref name="dataBytes"/> from a stream of unknown length, growing the buffer only as
    /// data arrives, then checks that nothing follows.
    /// </summary>
    private static byte[] ReadGrowing(Stream s, int dataBytes, string name, string shape, int headerBytes)
    {
        var buffer = new byte[Math.Min(dataBytes, FirstChunk)];
        int filled = 0;
        while (true)
        {
            filled += s.ReadAtLeast(buffer.AsSpan(filled), buffer.Length - filled, throwOnEndOfStream: false);
            if (filled < buffer.Length)
                throw new IdxFormatException(name, "item count",
                    $"the header promises {shape} = {dataBytes:N0} data bytes but only {filled:N0} follow the " +
                    $"{headerBytes}-byte header (file truncated?).");
            if (filled == dataBytes) break;
            Array.Resize(ref buffer, (int)Math.Min(2L * buffer.Length, dataBytes));
        }

        var scratch = new byte[4096];
        long extra = 0;
        int n;
        while (extra < ExtraBytesCounted && (n = s.Read(scratch)) > 0) extra += n;
        if (extra > 0)
            throw new IdxFormatException(name, "length",
                $"the header promises {shape} = {dataBytes:N0} data bytes but more follow the {headerBytes}-byte " +
                $"header ({(extra >= ExtraBytesCounted ? "at least " : "")}{extra:N0} extra).");
        return buffer;
    }
}
