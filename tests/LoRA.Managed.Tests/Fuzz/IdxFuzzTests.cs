using System.IO.Compression;
using CsCheck;
using LoRA.Managed.Data;
using LoRA.Managed.Tests.Data;

namespace LoRA.Managed.Tests.Fuzz;

/// <summary>
/// The IDX reader against 10,000 seeded mutations each of valid image and label files: truncations, bit flips,
/// byte overwrites, sizes set to edge values or nudged by a few, swapped header fields, inserted, deleted and
/// repeated bytes, and gzip wrapping before or after the damage.
/// </summary>
public class IdxFuzzTests
{
    /// <summary>A case: which valid file, the damage, and whether (and when) it is gzip-compressed.</summary>
    internal sealed record IdxCase(int Base, ByteMutation[] Mutations, GzipStep Gzip, ByteMutation[] AfterGzip)
    {
        public override string ToString() =>
            $"base {Base}, [{string.Join(", ", Mutations.AsEnumerable())}], gzip {Gzip}, then " +
            $"[{string.Join(", ", AfterGzip.AsEnumerable())}]";
    }

    internal enum GzipStep { None, Wrap, WrapThenDamage }

    private static readonly byte[][] ImageBases =
    [
        IdxTestFiles.ImagesFile(1, 1, 1), IdxTestFiles.ImagesFile(3, 2, 2), IdxTestFiles.ImagesFile(2, 4, 3),
        IdxTestFiles.ImagesFile(5, 3, 3), IdxTestFiles.ImagesFile(0, 28, 28), IdxTestFiles.ImagesFile(1, 8, 8),
    ];

    private static readonly byte[][] LabelBases =
    [
        IdxTestFiles.LabelsFile([]), IdxTestFiles.LabelsFile([7]), IdxTestFiles.LabelsFile([3, 1, 4, 1, 5]),
        IdxTestFiles.LabelsFile(Enumerable.Range(0, 40).Select(i => (byte)(i % 10)).ToArray()),
    ];

    private static Gen<IdxCase> Cases(int bases, int dims)
    {
        int[] fields = Enumerable.Range(0, 1 + dims).Select(i => 4 * i).ToArray();   // the magic and each size
        var mutation = ByteMutation.Any(fields, 4, bigEndian: true);
        var gzip = Gen.Frequency((6, Gen.Const(GzipStep.None)), (1, Gen.Const(GzipStep.Wrap)),
            (1, Gen.Const(GzipStep.WrapThenDamage)));
        var afterGzip = ByteMutation.Any([0, 4, 8], 4, bigEndian: false).Array[1, 3];
        return Gen.Select(Gen.Int[0, bases - 1], mutation.Array[1, 4], gzip, afterGzip,
            (b, m, g, after) => new IdxCase(b, m, g, g == GzipStep.WrapThenDamage ? after : []));
    }

    private static byte[] Build(IdxCase c, byte[][] bases)
    {
        byte[] bytes = bases[c.Base];
        foreach (var m in c.Mutations) bytes = m.Apply(bytes);
        if (c.Gzip == GzipStep.None) return bytes;
        bytes = IdxTestFiles.Gzip(bytes);
        foreach (var m in c.AfterGzip) bytes = m.Apply(bytes);
        return bytes;
    }

    /// <summary>For gzip input the budget follows the decompressed length (what the reader legitimately holds),
    /// measured here independently.</summary>
    private static bool IsGzip(byte[] input) => input.Length >= 2 && input[0] == 0x1f && input[1] == 0x8b;

    private static long EffectiveLength(byte[] input)
    {
        if (!IsGzip(input)) return input.Length;
        long decompressed = 0;
        try
        {
            using var gz = new GZipStream(new MemoryStream(input), CompressionMode.Decompress);
            var buffer = new byte[4096];
            int n;
            while ((n = gz.Read(buffer)) > 0 && decompressed < 1 << 26) decompressed += n;
        }
        catch (InvalidDataException) { }
        return Math.Max(input.Length, decompressed);
    }

    [Test]
    public void ImageFilesEndInSuccessOrTheDocumentedException()
    {
        var report = ParserFuzzer.Run("IDX images", Cases(ImageBases.Length, 3), 0x1D1_0001UL,
            c => Build(c, ImageBases),
            bytes => IdxReader.ReadImages(new MemoryStream(bytes, writable: false), ParserFuzzer.Source),
            (input, result) =>
            {
                var images = (IdxImages)result;
                if ((long)images.Count * images.Rows * images.Columns != images.Pixels.Length
                    || (long)images.Rows * images.Columns != images.ImageSize)
                    throw new FuzzFailure($"accepted {images.Count}×{images.Rows}×{images.Columns} with " +
                        $"{images.Pixels.Length} pixels, image size {images.ImageSize}");
                if (!IsGzip(input) && !images.Pixels.AsSpan().SequenceEqual(input.AsSpan(16)))
                    throw new FuzzFailure("accepted pixels differ from the bytes after the 16-byte header");
            },
            EffectiveLength);
        ParserFuzzer.AssertMixed(report);
    }

    [Test]
    public void LabelFilesEndInSuccessOrTheDocumentedException()
    {
        var report = ParserFuzzer.Run("IDX labels", Cases(LabelBases.Length, 1), 0x1D1_0002UL,
            c => Build(c, LabelBases),
            bytes => IdxReader.ReadLabels(new MemoryStream(bytes, writable: false), ParserFuzzer.Source),
            (input, result) =>
            {
                var labels = (byte[])result;
                if (!IsGzip(input) && !labels.AsSpan().SequenceEqual(input.AsSpan(8)))
                    throw new FuzzFailure("accepted labels differ from the bytes after the 8-byte header");
            },
            EffectiveLength);
        ParserFuzzer.AssertMixed(report);
    }
}
