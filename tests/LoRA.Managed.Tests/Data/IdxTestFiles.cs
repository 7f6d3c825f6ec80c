using System.Buffers.Binary;
using System.IO.Compression;

namespace LoRA.Managed.Tests.Data;

/// <summary>Writes small synthetic IDX files (and MNIST directories) into a temporary folder for tests.</summary>
internal sealed class IdxTestFiles : IDisposable
{
    public IdxTestFiles()
    {
        Directory = Path.Combine(Path.GetTempPath(), "lora-managed-tests-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
    }

    public string Directory { get; }

    public string PathOf(string name) => Path.Combine(Directory, name);

    /// <summary>The bytes of an IDX file: magic, big-endian dimensions, data.</summary>
    public static byte[] Idx(int magic, int[] dims, byte[] data)
    {
        var bytes = new byte[4 + 4 * dims.Length + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int d = 0; d < dims.Length; d++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * d), dims[d]);
        data.CopyTo(bytes, 4 + 4 * dims.Length);
        return bytes;
    }

    /// <summary>Deterministic pixels: image i, pixel p holds (7i + 3p) mod 256.</summary>
    public static byte[] Pixels(int count, int imageSize)
    {
        var pixels = new byte[count * imageSize];
        for (int i = 0; i < count; i++)
            for (int p = 0; p < imageSize; p++) pixels[i * imageSize + p] = (byte)((7 * i + 3 * p) % 256);
        return pixels;
    }

    public static byte[] ImagesFile(int count, int rows, int cols) =>
        Idx(2051, [count, rows, cols], Pixels(count, rows * cols));

    public static byte[] LabelsFile(byte[] labels) => Idx(2049, [labels.Length], labels);

    public static byte[] Gzip(byte[] raw)
    {
        using var buffer = new MemoryStream();
        using (var gz = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(raw);
        return buffer.ToArray();
    }

    public string Write(string name, byte[] bytes)
    {
        string path = PathOf(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Writes the four MNIST files (small: by default 20 train and 10 test images of 2×2 pixels, labels i mod
    /// 10).</summary>
    public void WriteMnist(string directory, bool gzip = false, int side = 2, int train = 20, int test = 10)
    {
        System.IO.Directory.CreateDirectory(directory);
        foreach (var (name, bytes) in MnistContents(side, train, test))
        {
            string path = Path.Combine(directory, gzip ? name + ".gz" : name);
            File.WriteAllBytes(path, gzip ? Gzip(bytes) : bytes);
        }
    }

    public static IEnumerable<(string Name, byte[] Bytes)> MnistContents(int side = 2, int train = 20, int test = 10)
    {
        yield return ("train-images-idx3-ubyte", ImagesFile(train, side, side));
        yield return ("train-labels-idx1-ubyte",
            LabelsFile(Enumerable.Range(0, train).Select(i => (byte)(i % 10)).ToArray()));
        yield return ("t10k-images-idx3-ubyte", ImagesFile(test, side, side));
        yield return ("t10k-labels-idx1-ubyte",
            LabelsFile(Enumerable.Range(0, test).Select(i => (byte)(9 - i % 10)).ToArray()));
    }

    public void Dispose()
    {
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }
}
