using System.Buffers.Binary;
using System.Text;
using LoRA.Managed.IO;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.IO;

/// <summary>The safetensors reader and writer against bytes built by hand from the specification.</summary>
public class SafeTensorsTests
{
    /// <summary>8-byte little-endian header length, the JSON header, then the data.</summary>
    private static byte[] Build(string header, params byte[][] data)
    {
        byte[] h = Encoding.UTF8.GetBytes(header);
        var bytes = new List<byte>();
        var len = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)h.Length);
        bytes.AddRange(len);
        bytes.AddRange(h);
        foreach (var d in data) bytes.AddRange(d);
        return bytes.ToArray();
    }

    private static byte[] F32(params float[] v)
    {
        var b = new byte[4 * v.Length];
        for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(4 * i), v[i]);
        return b;
    }

    [Test]
    public void ParsesAHandMadeFile()
    {
        byte[] file = Build(
            "{\"__metadata__\":{\"format\":\"pt\"},\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]}," +
            "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}  ",
            F32(1, 2, 3, 4, 5, 6), F32(-1.5f, 0.25f, 1e-8f));
        var st = SafeTensors.Parse(file, "hand.safetensors");
        Assert.That(st.Metadata["format"], Is.EqualTo("pt"));
        Assert.That(st.Tensors["a"].Shape, Is.EqualTo(new[] { 2, 3 }));
        Assert.That(st.Tensors["a"].Array, Is.EqualTo(new float[] { 1, 2, 3, 4, 5, 6 }));
        Assert.That(st.Tensors["b"].Array, Is.EqualTo(new[] { -1.5f, 0.25f, 1e-8f }));
    }

    [Test]
    public void DecodesF16AndBF16()
    {
        // F16: 1.0 = 0x3C00, -2.0 = 0xC000, 0.5 = 0x3800, 65504 = 0x7BFF. BF16: 1.0 = 0x3F80, -3.0 = 0xC040, π≈0x4049
        // (3.140625).
        byte[] f16 = { 0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0xFF, 0x7B };
        byte[] bf16 = { 0x80, 0x3F, 0x40, 0xC0, 0x49, 0x40 };
        byte[] file = Build(
            "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]},\"z\":{\"dtype\":\"BF16\"," +
            "\"shape\":[3],\"data_offsets\":[8,14]}}",
            f16, bf16);
        var st = SafeTensors.Parse(file, "half.safetensors");
        Assert.That(st.Tensors["h"].Array, Is.EqualTo(new[] { 1f, -2f, 0.5f, 65504f }));
        Assert.That(st.Tensors["z"].Array, Is.EqualTo(new[] { 1f, -3f, 3.140625f }));
        Assert.That(st.DTypes["z"], Is.EqualTo("BF16"));
    }

    [Test]
    public void WritesThePythonLibrarysLayout()
    {
        var tensors = new Dictionary<string, Tensor>
        {
            ["z"] = new(new float[] { 7 }, 1),
            ["a"] = new(new float[] { 1, 2, 3, 4 }, 2, 2),
        };
        byte[] bytes = SafeTensors.Serialize(tensors, new Dictionary<string, string> { ["format"] = "pt" });
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.That(n % 8, Is.EqualTo(0UL), "header padded to 8 bytes");
        string header = Encoding.UTF8.GetString(bytes, 8, (int)n);
        Assert.That(header.TrimEnd(' '), Is.EqualTo(
            "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}," +
            "\"z\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]}}"));
        Assert.That(bytes.AsSpan(8 + (int)n).ToArray(), Is.EqualTo(F32(1, 2, 3, 4, 7)));
    }

    [Test]
    public void RoundTripsBitForBit()
    {
        var g = new TorchGenerator(3);
        var tensors = new Dictionary<string, Tensor> { ["w"] = g.Rand(5, 7), ["v"] = g.Rand(3),
            ["t"] = g.Rand(2, 1, 3, 2) };
        tensors["v"][1] = float.NaN;
        tensors["v"][2] = -0f;
        string path = Path.Combine(TestContext.CurrentContext.WorkDirectory, $"rt-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensors.Write(path, tensors);
            var back = SafeTensors.Read(path);
            Assert.That(back.Tensors.Keys, Is.EquivalentTo(tensors.Keys));
            foreach (var (k, t) in tensors)
            {
                Assert.That(back.Tensors[k].Shape, Is.EqualTo(t.Shape));
                Assert.That(back.Tensors[k].Array.Select(BitConverter.SingleToInt32Bits),
                    Is.EqualTo(t.Array.Select(BitConverter.SingleToInt32Bits)), k);
            }
            Assert.That(back.Metadata, Is.Empty);
        }
        finally { File.Delete(path); }
    }

    private static readonly object[] Malformed =
    {
        new object[] { new byte[] { 1, 2, 3 }, "header length" },
        new object[] { LengthThen(200, "{}"), "header length" },
        new object[] { LengthThen(200_000_000, "{}"), "header length" },
        new object[] { Build("{\"a\":"), "header" },
        new object[] { Build("[1,2]"), "header" },
        new object[] { Build("{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", F32(1)), "a.dtype" },
        new object[] { Build("{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", new byte[8]),
            "a.dtype" },
        new object[] { Build("{\"a\":{\"dtype\":\"F32\",\"shape\":\"x\",\"data_offsets\":[0,4]}}", F32(1)), "a.shape" },
        new object[] { Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", F32(1)), "a.shape" },
        new object[] { Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", F32(1)),
            "a.data_offsets" },
        new object[] { Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", F32(1)),
            "a.data_offsets" },
        new object[] { Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", F32(1)),
            "a.data_offsets" },
        new object[] { Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}," +
            "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", F32(1)), "data_offsets" },
        new object[] { Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", F32(1, 2)),
            "a.data_offsets" },
        new object[] { Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", F32(1)),
            "a.data_offsets" },
        new object[] { Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", F32(1, 2)), "data" },
        new object[] { Build("{\"__metadata__\":{\"format\":3}}"), "__metadata__.format" },
        new object[] { Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}," +
            "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", F32(1)), "a" },
        new object[] { Build("{\"a\":[1]}"), "a" },
    };

    private static byte[] LengthThen(ulong n, string rest)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, n);
        return b.Concat(Encoding.UTF8.GetBytes(rest)).ToArray();
    }

    [TestCaseSource(nameof(Malformed))]
    public void MalformedFilesAreRefusedNamingFileAndField(byte[] bytes, string field)
    {
        var ex = Assert.Throws<InvalidDataFormatException>(() => SafeTensors.Parse(bytes, "bad.safetensors"));
        Assert.That(ex!.File, Is.EqualTo("bad.safetensors"));
        Assert.That(ex.Field, Does.EndWith(field));
        Assert.That(ex.Message, Does.StartWith("bad.safetensors: ").And.Contain(field));
    }

    [Test]
    public void TruncatedFileOnDiskIsRefused()
    {
        var bytes = SafeTensors.Serialize(new Dictionary<string, Tensor> { ["w"] = new TorchGenerator(1).Rand(4, 4) });
        string path = Path.Combine(TestContext.CurrentContext.WorkDirectory, $"trunc-{Guid.NewGuid():N}.safetensors");
        File.WriteAllBytes(path, bytes[..^5]);
        try
        {
            var ex = Assert.Throws<InvalidDataFormatException>(() => SafeTensors.Read(path));
            Assert.That(ex!.File, Is.EqualTo(path));
            Assert.That(ex.Field, Is.EqualTo("w.data_offsets"));
        }
        finally { File.Delete(path); }
    }
}
