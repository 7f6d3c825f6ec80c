using System.Buffers.Binary;
using System.Text;
using LoRA.Managed.Lora;
using LoRA.Managed.Data;
using LoRA.Managed.IO;
using LoRA.Managed.Tests.Data;

namespace LoRA.Managed.Tests.Fuzz;

/// <summary>
/// Each input the fuzzers found escaping (or wrongly accepted) before the fixes, reduced by hand, pinned here so it
/// stays fixed whatever the fuzzers' seeds; plus the memory bounds of the gzip path, which fuzzing with small files
/// cannot reach.
/// </summary>
public class FuzzFindingsTests
{
    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    private static byte[] SafeTensorsWithHeader(byte[] header, int dataBytes = 0)
    {
        var bytes = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        return bytes;
    }

    private static InvalidDataFormatException Refused(Action parse, string field)
    {
        var e = Assert.Throws(Is.InstanceOf<InvalidDataFormatException>(), () => parse()) as InvalidDataFormatException;
        Assert.That(e!.Field, Is.EqualTo(field));
        Assert.That(e.Message, Does.StartWith($"{e.File}: {field}: "));
        return e;
    }

    [Test]
    public void IdxRejectionsAreInvalidDataFormatExceptions()
    {
        var e = Refused(() => IdxReader.ReadLabels(new MemoryStream([0, 0, 8, 3, 0, 0, 0, 0]), "labels.idx"),
            "dimension count");
        Assert.That(e, Is.TypeOf<IdxFormatException>());
        Assert.That(e.File, Is.EqualTo("labels.idx"));
    }

    [Test]
    public void ZeroImagesWhoseSizeOverflowsAnIntAreRefused()
    {
        // Found: 0 images of 28 × 2147483647 needs no data, so it was accepted with ImageSize = 28·(2³¹−1) wrapped to
        // −28.
        byte[] file = IdxTestFiles.Idx(2051, [0, 28, int.MaxValue], []);
        var e = Refused(() => IdxReader.ReadImages(new MemoryStream(file), "images.idx"), "image size");
        Assert.That(e.Message, Does.Contain("28×2147483647"));
        Assert.That(IdxReader.ReadImages(new MemoryStream(IdxTestFiles.Idx(2051, [0, 46340, 46340], [])),
            "ok").ImageSize, Is.EqualTo(46340 * 46340));
    }

    [Test]
    public void InvalidUtf8InASafeTensorsNameIsAHeaderError()
    {
        // Found: byte F4 inside a tensor name; JsonProperty.Name threw InvalidOperationException.
        byte[] header = [.. Utf8("{\""), 0xF4, .. Utf8("\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}")];
        var e = Refused(() => SafeTensors.Parse(SafeTensorsWithHeader(header, 4), "w.safetensors"), "header");
        Assert.That(e.Message, Does.Contain("UTF-8"));
    }

    [TestCase("\\ud800")]
    [TestCase("x\\udc00")]
    [TestCase("\\ud800\\ud800")]
    public void LoneSurrogateEscapesInSafeTensorsAreAHeaderError(string escape)
    {
        // Found: "\ud800" in a shape or offset array; JsonElement.GetString (for the message) threw
        // InvalidOperationException.
        byte[] header = Utf8($"{{\"w\":{{\"dtype\":\"F32\",\"shape\":[2,\"{escape}\"],\"data_offsets\":[0,4]}}}}");
        Refused(() => SafeTensors.Parse(SafeTensorsWithHeader(header, 4), "w.safetensors"), "header");
    }

    [Test]
    public void AnEmptyTensorNameStillGivesANamedField()
    {
        // Found: a tensor named "" whose value is not an object gave Field "" and the message "file: : ...".
        var e = Refused(() => SafeTensors.Parse(SafeTensorsWithHeader(Utf8("{\"\":\"x\"}")), "w.safetensors"), "\"\"");
        Assert.That(e.Message, Does.Contain("expected an object"));
    }

    [Test]
    public void HugeJsonValuesAreCutInMessages()
    {
        string big = new('9', 100_000);
        byte[] header = Utf8($"{{\"w\":{{\"dtype\":\"F32\",\"shape\":[{big}],\"data_offsets\":[0,4]}}}}");
        var e = Refused(() => SafeTensors.Parse(SafeTensorsWithHeader(header, 4), "w.safetensors"), "w.shape");
        Assert.That(e.Message.Length, Is.LessThan(300));
    }

    [TestCase(new byte[] { 0x4C, 0x4F, 0xFF, 0x41 }, TestName = "InvalidUtf8InAConfigIsAJsonError")]
    [TestCase(new byte[] { 0x5C, 0x75, 0x64, 0x63, 0x30, 0x30 }, TestName = "LoneSurrogateInAConfigIsAJsonError")]
    public void BadTextInAConfigIsAJsonError(byte[] peftType)
    {
        // Found: invalid UTF-8 ("LO\xFFA") and "\udc00" in string values; GetString threw InvalidOperationException.
        byte[] json = [.. Utf8("{\"peft_type\":\""), .. peftType, .. Utf8("\",\"r\":8,\"target_modules\":[\"q\"]}")];
        Refused(() => AdapterConfigFile.Parse(json, "adapter_config.json"), "json");
    }

    private static byte[] Config(string members) =>
        Utf8("{\"peft_type\":\"LORA\",\"target_modules\":[\"q\"]," + (members.Contains("\"r\"") ? "" : "\"r\":8,") +
            members + "}");

    [TestCase("\"lora_alpha\":-1e400", "lora_alpha", TestName = "LoraAlphaBeyondDoubleIsRefused")]
    [TestCase("\"lora_alpha\":1e400", "lora_alpha", TestName = "LoraAlphaInfinityIsRefused")]
    [TestCase("\"lora_dropout\":0.9999999999999999", "lora_dropout", TestName = "DropoutRoundingToOneIsRefused")]
    [TestCase("\"r\":4,\"r\":8", "r", TestName = "DuplicateKeyIsRefused")]
    [TestCase("\"init_lora_weights\":\"pissa_niter_x\"", "init_lora_weights", TestName = "PissaNiterMustBeANumber")]
    public void ConfigNumbersAndKeys(string members, string field)
    {
        // Found: -1e400 read as -∞ and 0.9999999999999999 stored as 1f were accepted, then refused by
        // LoraConfig.Validate with an ArgumentException.
        Refused(() => AdapterConfigFile.Parse(Config(members), "adapter_config.json"), field);
    }

    [Test]
    public void NumbersThatUnderflowToZeroAreAccepted()
    {
        var config = AdapterConfigFile.Parse(
            Config("\"lora_dropout\":1e-400,\"lora_alpha\":1e30,\"init_lora_weights\":\"pissa_niter_4\""), "c.json");
        Assert.That(config.Dropout, Is.EqualTo(0f));
        Assert.That(config.Alpha, Is.EqualTo(1e30));
        Assert.That(config.Init, Is.EqualTo(LoRA.Managed.Lora.LoraInit.Pissa));
    }

    [Test]
    public void BlankTargetModuleIsRefused()
    {
        // Found: [" ", "q_proj"] was accepted; LoraConfig.Validate then threw ArgumentException.
        Refused(() =>
            AdapterConfigFile.Parse(Utf8("{\"peft_type\":\"LORA\",\"r\":8,\"target_modules\":[\" \",\"q_proj\"]}"),
                "c.json"), "target_modules");
    }

    [Test]
    public void OversizedConfigIsRefusedBeforeParsing()
    {
        var json = new byte[AdapterConfigFile.MaxFileBytes + 1];
        json.AsSpan().Fill((byte)' ');
        Refused(() => AdapterConfigFile.Parse(json, "c.json"), "json");
    }

    [Test]
    public void GzipThatDecompressesFarBeyondItsHeaderCostsLittleMemory()
    {
        // 10 labels followed by 32 MiB of zeros: about 320 KB compressed, 100× smaller. The reader stops after the
        // promised bytes and counts about 1 MiB of the excess through a 4 KiB scratch buffer, so it allocates
        // kilobytes, not the decompressed size (the reader this replaced buffered all 32 MiB before looking at the
        // header).
        byte[] raw = [.. IdxTestFiles.LabelsFile(new byte[10]), .. new byte[32 << 20]];
        byte[] gz = IdxTestFiles.Gzip(raw);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Refused(() => IdxReader.ReadLabels(new MemoryStream(gz), "bomb.gz"), "length");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        TestContext.Out.WriteLine($"{gz.Length:N0}-byte gzip of {raw.Length:N0} bytes: allocated " +
            $"{allocated:N0} bytes to refuse it");
        Assert.That(e.Message, Does.Contain("(at least ").And.Contain(" extra)"));
        Assert.That(allocated, Is.LessThan(1 << 20));
    }

    [Test]
    public void GzipWhoseHeaderPromisesGigabytesCostsOneChunk()
    {
        byte[] gz = IdxTestFiles.Gzip(IdxTestFiles.Idx(2049, [2_000_000_000], new byte[100]));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Refused(() => IdxReader.ReadLabels(new MemoryStream(gz), "big.gz"), "item count");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(e.Message, Does.Contain("only 100"));
        Assert.That(allocated, Is.LessThan(256 << 10));
    }

    [Test]
    public void GzipReadGrowsToLargeValidContent()
    {
        // 300,000 labels cross several buffer doublings (64 KiB → 128 → 256 → 300,000).
        byte[] labels = Enumerable.Range(0, 300_000).Select(i => (byte)(i % 10)).ToArray();
        byte[] read = IdxReader.ReadLabels(new MemoryStream(IdxTestFiles.Gzip(IdxTestFiles.LabelsFile(labels))),
            "many.gz");
        Assert.That(read, Is.EqualTo(labels));
    }
}
