using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using LoRA.Managed.IO;
using LoRA.Managed.Kernels;

namespace LoRA.Managed.Models.Hf;

/// <summary>
/// A model's weights as <see cref="HfModel"/> quantised them, kept for the next load so it need neither read the
/// float32 tensors nor quantise them again. One binary file, little-endian, written atomically
/// (<see cref="AtomicFile"/>):
/// <code>
/// "LMQCACHE"  int32 format version  int64 payload length
/// payload:    int32 BaseDType, string float32 fingerprint (BaseChecksum of the source weights),
///             int32 n, n × (string label, string value)                      the key (<see cref="QuantizedCacheKey"/>)
///             int32 m, m × (string parameter name, int32 rank, rank × int32 float32 shape,
///                          int32 rows, int32 columns, int32 BaseDType, float32 offset,
///                          int32 k, k × (byte element type, int64 elements, the elements' bytes))
/// SHA-256 of everything before it (32 bytes)
/// </code>
/// Strings are an int32 byte length and UTF-8. A reader checks magic, version, length and checksum before it trusts
/// a byte; a file that fails any is reported in one line and rebuilt, never used.
/// </summary>
public static class QuantizedWeightCache
{
    /// <summary>The folder beside a model's files that holds its caches.</summary>
    public const string FolderName = ".lora-managed";

    /// <summary>The format this build writes and reads. Bump it whenever <see cref="QuantizedMatrix"/>'s storage or a
    /// quantiser changes, so caches made by an older build are rebuilt, not misread.</summary>
    public const int FormatVersion = 1;

    private static ReadOnlySpan<byte> Magic => "LMQCACHE"u8;
    private const int HeaderBytes = 8 + 4 + 8, TrailerBytes = 32;

    /// <summary>Where the cache of <paramref name="modelDirectory"/> in <paramref name="dtype"/> lives: beside the
    /// model (<c>&lt;model&gt;/.lora-managed/quantized-&lt;dtype&gt;.bin</c>) when its folder is writable, else
    /// under <paramref name="cacheRoot"/> (default: <c>Data.DataCache.Folder("quantized")</c>).</summary>
    public static string PathFor(string modelDirectory, BaseDType dtype, string? cacheRoot = null) =>
        QuantizedCacheKey.PathFor(modelDirectory, dtype, cacheRoot);

    /// <summary>One quantised weight: its parameter's name and float32 shape, and its storage.</summary>
    internal sealed record Entry(string Name, int[] Shape, QuantizedMatrix Weight);

    /// <summary>A cache file's content.</summary>
    internal sealed record Contents(BaseDType DType, string Float32Checksum, QuantizedCacheKey Key,
        IReadOnlyList<Entry> Entries);

    /// <summary>Why a cache file cannot be used: one line, without the path.</summary>
    internal sealed class BadCacheException(string reason) : Exception(reason);

    /// <summary>Writes <paramref name="contents"/> to <paramref name="path"/> atomically; <paramref name="wrap"/>
    /// (tests) wraps the file's stream, e.g. to fail half-way.</summary>
    internal static void Write(string path, Contents contents, Func<Stream, Stream>? wrap = null)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("the quantised cache is little-endian only.");
        // Measured by writing it once to nowhere: its length precedes it in the file.
        var counter = new HashingStream(Stream.Null, null);
        WritePayload(counter, contents);
        AtomicFile.Write(path, file =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffered = new BufferedStream(wrap is null ? file : wrap(file), 1 << 16);
            var hashed = new HashingStream(buffered, hash);
            hashed.Write(Magic);
            WriteInt32(hashed, FormatVersion);
            Span<byte> eight = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(eight, counter.Position);
            hashed.Write(eight);
            WritePayload(hashed, contents);
            buffered.Write(hash.GetHashAndReset());
            buffered.Flush();
        });
    }

    /// <summary>Reads and checks a cache file (magic, version, length, checksum, structure).</summary>
    /// <exception cref="BadCacheException">The file cannot be used; the message says why.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    internal static Contents Read(string path)
    {
        if (!BitConverter.IsLittleEndian) throw new BadCacheException("the quantised cache is little-endian only");
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        long length = file.Length;
        if (length < HeaderBytes + TrailerBytes) throw new BadCacheException($"truncated ({length} bytes)");
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var reader = new HashingStream(file, hash);
        Span<byte> magic = stackalloc byte[8];
        reader.ReadExactly(magic);
        if (!magic.SequenceEqual(Magic)) throw new BadCacheException("not a quantised-weight cache (wrong magic)");
        int version = ReadInt32(reader);
        if (version != FormatVersion)
            throw new BadCacheException($"format version {version}, this build reads {FormatVersion}");
        long payload = ReadInt64(reader), expected = HeaderBytes + payload + TrailerBytes;
        if (payload < 0 || expected != length)
            throw new BadCacheException(length < expected
                ? $"truncated ({length} of {expected} bytes)" : $"{length} bytes where its header says {expected}");
        Contents contents;
        try { contents = ReadPayload(reader, payload); }
        catch (Exception e) when (e is EndOfStreamException or ArgumentException or OverflowException)
        {
            // A damaged payload usually fails here first; the checksum says which it is.
            reader.ReadTo(HeaderBytes + payload);
            if (!ChecksumMatches(hash, file)) throw new BadCacheException("checksum mismatch");
            throw new BadCacheException($"malformed ({e.Message})");
        }
        if (!ChecksumMatches(hash, file)) throw new BadCacheException("checksum mismatch");
        return contents;
    }

    private static bool ChecksumMatches(IncrementalHash hash, FileStream file)
    {
        Span<byte> stored = stackalloc byte[TrailerBytes];
        file.ReadExactly(stored);
        return hash.GetHashAndReset().AsSpan().SequenceEqual(stored);
    }

    private static void WritePayload(Stream s, Contents c)
    {
        WriteInt32(s, (int)c.DType);
        WriteString(s, c.Float32Checksum);
        WriteInt32(s, c.Key.Entries.Count);
        foreach (var (label, value) in c.Key.Entries)
        {
            WriteString(s, label);
            WriteString(s, value);
        }
        WriteInt32(s, c.Entries.Count);
        foreach (var e in c.Entries)
        {
            WriteString(s, e.Name);
            WriteInt32(s, e.Shape.Length);
            foreach (int d in e.Shape) WriteInt32(s, d);
            WriteInt32(s, e.Weight.Rows);
            WriteInt32(s, e.Weight.Columns);
            WriteInt32(s, (int)e.Weight.DType);
            Array[] arrays = e.Weight.StorageArrays(out float offset);
            WriteInt32(s, BitConverter.SingleToInt32Bits(offset));
            WriteInt32(s, arrays.Length);
            foreach (Array a in arrays)
            {
                s.WriteByte(ElementType(a));
                WriteInt32(s, (int)a.LongLength);
                WriteInt32(s, (int)(a.LongLength >> 32));
                s.Write(Bytes(a));
            }
        }
    }

    private static Contents ReadPayload(HashingStream s, long payload)
    {
        long end = HeaderBytes + payload;
        var dtype = ReadDType(s);
        string checksum = ReadString(s, end);
        int keys = ReadCount(s, end, 8);
        var key = new List<(string, string)>(keys);
        for (int i = 0; i < keys; i++) key.Add((ReadString(s, end), ReadString(s, end)));
        int count = ReadCount(s, end, 16);
        var entries = new List<Entry>(count);
        for (int i = 0; i < count; i++)
        {
            string name = ReadString(s, end);
            int[] shape = new int[ReadCount(s, end, 4)];
            for (int d = 0; d < shape.Length; d++) shape[d] = ReadInt32(s);
            int rows = ReadInt32(s), columns = ReadInt32(s);
            BaseDType matrixType = ReadDType(s);
            float offset = BitConverter.Int32BitsToSingle(ReadInt32(s));
            var arrays = new Array[ReadCount(s, end, 9)];
            for (int a = 0; a < arrays.Length; a++)
            {
                byte type = (byte)s.ReadByte();
                long n = ReadInt64(s);
                int size = type switch
                {
                    0 => 4, 1 or 2 => 2, 3 or 4 => 1, _ => throw new ArgumentException($"element type {type}"),
                };
                if (n < 0 || n > (end - s.Position) / size) throw new ArgumentException($"{n} elements past the end");
                arrays[a] = type switch
                {
                    0 => new float[n], 1 => new ushort[n], 2 => new Half[n], 3 => new sbyte[n], _ => new byte[n],
                };
                s.ReadExactly(Bytes(arrays[a]));
            }
            QuantizedMatrix weight;
            try { weight = QuantizedMatrix.FromStorage(rows, columns, matrixType, arrays, offset); }
            catch (ArgumentException e) { throw new ArgumentException($"{name}: {e.Message}", e); }
            entries.Add(new Entry(name, shape, weight));
        }
        if (s.Position != end) throw new ArgumentException($"{end - s.Position} bytes after the last weight");
        return new Contents(dtype, checksum, new QuantizedCacheKey(key), entries);
    }

    // By exact type: the runtime lets a byte[] match an sbyte[] pattern (and the other way round).
    private static byte ElementType(Array a) =>
        a.GetType() == typeof(float[]) ? (byte)0 : a.GetType() == typeof(ushort[]) ? (byte)1
        : a.GetType() == typeof(Half[]) ? (byte)2 : a.GetType() == typeof(sbyte[]) ? (byte)3
        : a.GetType() == typeof(byte[]) ? (byte)4
        : throw new ArgumentException($"no element type for {a.GetType().Name}");

    // The array's elements as bytes (little-endian machines only, checked by Read and Write).
    internal static Span<byte> Bytes(Array a) => ElementType(a) switch
    {
        0 => MemoryMarshal.AsBytes(((float[])a).AsSpan()),
        1 => MemoryMarshal.AsBytes(((ushort[])a).AsSpan()),
        2 => MemoryMarshal.AsBytes(((Half[])a).AsSpan()),
        3 => MemoryMarshal.AsBytes(((sbyte[])a).AsSpan()),
        _ => (byte[])a,
    };

    private static BaseDType ReadDType(Stream s)
    {
        int d = ReadInt32(s);
        return Enum.IsDefined((BaseDType)d) ? (BaseDType)d : throw new ArgumentException($"base dtype {d}");
    }

    private static int ReadCount(Stream s, long end, int leastBytesEach)
    {
        int n = ReadInt32(s);
        if (n < 0 || n > (end - s.Position) / leastBytesEach) throw new ArgumentException($"count {n} past the end");
        return n;
    }

    private static string ReadString(Stream s, long end)
    {
        byte[] bytes = new byte[ReadCount(s, end, 1)];
        s.ReadExactly(bytes);
        return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
    }

    private static void WriteString(Stream s, string value)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(value);
        WriteInt32(s, bytes.Length);
        s.Write(bytes);
    }

    private static void WriteInt32(Stream s, int value)
    {
        Span<byte> four = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(four, value);
        s.Write(four);
    }

    private static int ReadInt32(Stream s)
    {
        Span<byte> four = stackalloc byte[4];
        s.ReadExactly(four);
        return BinaryPrimitives.ReadInt32LittleEndian(four);
    }

    private static long ReadInt64(Stream s)
    {
        Span<byte> eight = stackalloc byte[8];
        s.ReadExactly(eight);
        return BinaryPrimitives.ReadInt64LittleEndian(eight);
    }
}
