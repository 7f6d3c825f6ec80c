using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using LoRA.Managed.Data;
using LoRA.Managed.Kernels;

namespace LoRA.Managed.Models.Hf;

/// <summary>
/// What a quantised-weight cache was made from, as (label, value) lines compared exactly on read: a fingerprint of
/// the quantisers (every format's storage of a fixed probe), config.json's SHA-256, a sharded index's SHA-256, and for
/// each weight file (its target, behind a link) its byte length, last-write time and the SHA-256 of its safetensors
/// header (names, dtypes, shapes and offsets of every tensor). Rewriting a file changes its time;
/// a file edited in place within the same tick, to the same length, with the same header, is the one change it
/// cannot see (as <c>make</c> cannot).
/// </summary>
internal sealed record QuantizedCacheKey(IReadOnlyList<(string Label, string Value)> Entries)
{
    /// <summary>The key of <paramref name="directory"/>'s config and the weight files actually read.</summary>
    public static QuantizedCacheKey Create(string directory, IEnumerable<string> weightFiles)
    {
        var entries = new List<(string, string)>
        {
            ("quantisers", Quantisers.Value),
            (HfConfig.FileName, Sha256File(Path.Combine(directory, HfConfig.FileName))),
        };
        string index = Path.Combine(directory, HfWeights.IndexFile);
        if (!File.Exists(Path.Combine(directory, HfWeights.SingleFile)) && File.Exists(index))
            entries.Add((HfWeights.IndexFile, Sha256File(index)));
        foreach (string file in weightFiles)
        {
            // Through a symbolic link (a Hub cache's snapshot folder links to its blobs) to the file itself: the
            // link's own length and time would not change when its target is rewritten.
            var info = new FileInfo(file);
            var target = info.LinkTarget is null ? info : (FileInfo?)info.ResolveLinkTarget(true) ?? info;
            entries.Add((info.Name, string.Create(CultureInfo.InvariantCulture,
                $"{target.Length} bytes, written {target.LastWriteTimeUtc:O}, header sha256 {HeaderSha256(file)}")));
        }
        return new QuantizedCacheKey(entries);
    }

    // A fingerprint of the quantisers themselves: every format's storage of one fixed probe matrix. A build whose
    // quantising changed (a bug fixed, a rounding rule) then finds its old caches stale instead of trusting bits
    // another build made; computed once a process.
    private static readonly Lazy<string> Quantisers = new(() =>
    {
        const int rows = 3, columns = 160;   // rows of more than two NF4 blocks, and a partial one
        var probe = new float[rows * columns];
        for (int i = 0; i < probe.Length; i++) probe[i] = MathF.Sin(0.37f * i) * (1 + i % 7) * 0.01f;
        probe[5] = 0f;
        probe[17] = -3.5e-39f;   // a subnormal
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (BaseDType d in new[] { BaseDType.Bf16, BaseDType.F16, BaseDType.Int8, BaseDType.Nf4 })
        {
            Array[] arrays = QuantizedMatrix.Quantize(probe, rows, columns, d).StorageArrays(out float offset);
            foreach (Array a in arrays) hash.AppendData(QuantizedWeightCache.Bytes(a));
            hash.AppendData(BitConverter.GetBytes(offset));
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    });

    /// <summary>Null when <paramref name="other"/> is the same key, else what differs, e.g.
    /// <c>model.safetensors changed</c>.</summary>
    public string? Difference(QuantizedCacheKey other)
    {
        for (int i = 0; i < Math.Max(Entries.Count, other.Entries.Count); i++)
        {
            if (i >= Entries.Count) return $"{other.Entries[i].Label} is no longer read";
            if (i >= other.Entries.Count) return $"{Entries[i].Label} was not read when the cache was made";
            if (Entries[i].Label != other.Entries[i].Label)
                return $"{Entries[i].Label} replaces {other.Entries[i].Label}";
            if (Entries[i].Value != other.Entries[i].Value) return $"{Entries[i].Label} changed";
        }
        return null;
    }

    /// <summary>
    /// Where the cache of <paramref name="modelDirectory"/> in <paramref name="dtype"/> lives, one rule: beside the
    /// model, <c>&lt;model&gt;/.lora-managed/quantized-&lt;dtype&gt;.bin</c>, when the model's folder is writable;
    /// otherwise (a shared, read-only model) under <paramref name="cacheRoot"/> (default
    /// <c>DataCache.Folder("quantized")</c>), in a folder named after the model's folder and a hash of its full path.
    /// </summary>
    public static string PathFor(string modelDirectory, BaseDType dtype, string? cacheRoot) =>
        PathFor(modelDirectory, dtype, HfModel.DefaultEmbeddingDType(dtype), cacheRoot);

    /// <summary>As <see cref="PathFor(string, BaseDType, string?)"/> for tables stored in
    /// <paramref name="tablesDType"/>: a name of its own unless they are the default for
    /// <paramref name="dtype"/>.</summary>
    public static string PathFor(string modelDirectory, BaseDType dtype, BaseDType tablesDType, string? cacheRoot)
    {
        string file = tablesDType == HfModel.DefaultEmbeddingDType(dtype)
            ? $"quantized-{dtype.ToString().ToLowerInvariant()}.bin"
            : $"quantized-{dtype.ToString().ToLowerInvariant()}-tables-{tablesDType.ToString().ToLowerInvariant()}.bin";
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelDirectory));
        if (Writable(full)) return Path.Combine(full, QuantizedWeightCache.FolderName, file);
        string id = Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(full)))[..16];
        return Path.Combine(cacheRoot ?? DataCache.Folder("quantized"), $"{Path.GetFileName(full)}-{id}", file);
    }

    // Writable: the folder's mode lets its owner write (so a folder made read-only with chmod counts as read-only even
    // for root, who could write anyway) and the cache's folder exists or can be made in it.
    private static bool Writable(string directory)
    {
        try
        {
            if (OperatingSystem.IsWindows())
            {
                if (new DirectoryInfo(directory).Attributes.HasFlag(FileAttributes.ReadOnly)) return false;
            }
            else if (!File.GetUnixFileMode(directory).HasFlag(UnixFileMode.UserWrite))
                return false;
            string cache = Path.Combine(directory, QuantizedWeightCache.FolderName);
            if (!OperatingSystem.IsWindows() && Directory.Exists(cache)
                && !File.GetUnixFileMode(cache).HasFlag(UnixFileMode.UserWrite))
                return false;
            Directory.CreateDirectory(cache);
            return true;
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    private static string Sha256File(string path) =>
        "sha256 " + Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    // The 8-byte length and the JSON header of a safetensors file (already checked by SafeTensorsReader.Open).
    private static string HeaderSha256(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
        Span<byte> length = stackalloc byte[8];
        stream.ReadExactly(length);
        byte[] header = new byte[8 + checked((int)BinaryPrimitives.ReadUInt64LittleEndian(length))];
        length.CopyTo(header);
        stream.ReadExactly(header.AsSpan(8));
        return Convert.ToHexStringLower(SHA256.HashData(header));
    }
}
