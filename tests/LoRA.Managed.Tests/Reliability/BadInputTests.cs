using System.Buffers.Binary;
using System.Text;
using LoRA.Managed.Data;
using LoRA.Managed.IO;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using LoRA.Managed.Tests.Data;

namespace LoRA.Managed.Tests.Reliability;

/// <summary>
/// Issue 18, bad input the library used to accept: labels out of range, NaN and infinite weights, scales that are
/// finite as a double but not as a float, non-regular files, and safetensors files whose header does not fit the model.
/// </summary>
public class BadInputTests
{
    private IdxTestFiles _files = null!;

    [SetUp]
    public void SetUp() => _files = new IdxTestFiles();

    [TearDown]
    public void TearDown() => _files.Dispose();

    [Test]
    public void AnIdxLabelOutsideTheTenClassesIsRefusedNamingFileIndexAndValue()
    {
        string dir = _files.PathOf("mnist");
        _files.WriteMnist(dir);
        string labels = Path.Combine(dir, MnistFiles.TestLabelsName);
        byte[] bytes = File.ReadAllBytes(labels);
        bytes[8 + 3] = 200;   // the 8-byte header, then label 3
        File.WriteAllBytes(labels, bytes);
        var ex = Assert.Throws<IdxFormatException>(() => MnistDataset.Load(MnistFiles.TryFind(dir)!, train: false));
        Assert.That(ex!.File, Is.EqualTo(labels));
        Assert.That(ex.Message, Does.Contain("label 3").And.Contain("200"));
    }

    [Test]
    public void AModelFileHoldingNaNIsRefusedNamingTheTensorAndNothingChanges()
    {
        var source = new Mlp(new TorchGenerator(1), 8, 6, 3);
        source.StateDict()["layers.3.weight"].Data[5] = float.NaN;
        string path = _files.PathOf("nan.safetensors");
        ModelFile.Save(source, path);
        var target = new Mlp(new TorchGenerator(2), 8, 6, 3);
        float[] before = target.Parameters().SelectMany(p => p.Array).ToArray();
        var ex = Assert.Throws<InvalidDataFormatException>(() => ModelFile.Load(target, path));
        Assert.That(ex!.Field, Is.EqualTo("layers.3.weight"));
        Assert.That(ex.Message, Does.Contain("element 5 is NaN"));
        Assert.That(target.Parameters().SelectMany(p => p.Array).ToArray(), Is.EqualTo(before));
    }

    [Test]
    public void AnAdapterHoldingInfinityIsRefusedNamingTheTensor()
    {
        var peft = AdaptedMlp();
        peft.LoraLayers().Single().Value.LoraB["default"].Weight.Data[1] = float.PositiveInfinity;
        string dir = _files.PathOf("adapter");
        // SaveAdapter refuses it (below); a checkpoint's bytes are not checked, so they write the file to load.
        Directory.CreateDirectory(dir);
        foreach (var (name, bytes) in peft.SerializeTrainable()) File.WriteAllBytes(Path.Combine(dir, name), bytes);
        var ex = Assert.Throws<InvalidDataFormatException>(() => PeftModel.FromPretrained(new Mlp(new TorchGenerator(1),
            8, 6, 3), dir));
        Assert.That(ex!.Field, Is.EqualTo("base_model.model.layers.3.lora_B.weight"));
        Assert.That(ex.Message, Does.Contain("element 1 is ∞").Or.Contain("element 1 is Infinity"));
    }

    private static PeftModel AdaptedMlp() => LoraModel.GetPeftModel(new Mlp(new TorchGenerator(1), 8, 6, 3),
        new LoraConfig { Rank = 2, TargetModules = ["layers.3"] }, new TorchGenerator(3));

    [Test]
    public void SavingAnAdapterHoldingNaNIsRefusedNamingTheTensorAndWritesNothing()
    {
        var peft = AdaptedMlp();
        peft.LoraLayers().Single().Value.LoraA["default"].Weight.Data[3] = float.NaN;
        string dir = _files.PathOf("nan-adapter");
        var ex = Assert.Throws<InvalidDataFormatException>(() => peft.SaveAdapter(dir));
        Assert.That(ex!.Field, Is.EqualTo("base_model.model.layers.3.lora_A.weight"));
        Assert.That(ex.Message, Does.Contain("element 3 is NaN").And.Contain(AdapterFiles.WeightsFileName));
        Assert.That(Directory.Exists(dir) ? Directory.GetFiles(dir) : [], Is.Empty);
    }

    [Test]
    public void ALoraAlphaFiniteAsADoubleButInfiniteAsAFloatIsRefused()
    {
        string json = AdapterConfigFile.ToJson(new LoraConfig { Rank = 4, Alpha = 8, TargetModules = ["layers.5"] })
            .Replace("\"lora_alpha\": 8", "\"lora_alpha\": 1e308", StringComparison.Ordinal);
        Assert.That(json, Does.Contain("1e308"));
        var ex = Assert.Throws<InvalidDataFormatException>(() => AdapterConfigFile.Parse(Encoding.UTF8.GetBytes(json),
            "cfg"));
        Assert.That(ex!.Field, Is.EqualTo("lora_alpha"));
        Assert.That(ex.Message, Does.Contain("float"));
        var direct = Assert.Throws<ArgumentException>(() => new LoraConfig { Rank = 1, Alpha = 1e308,
            TargetModules = ["x"] }.Validate());
        Assert.That(direct!.Message, Does.Contain("Alpha").And.Contain("float"));
    }

    [Test]
    public void AMergeThatOverflowsToInfinityIsRefusedNamingTheParameter()
    {
        var peft = LoraModel.GetPeftModel(new Mlp(new TorchGenerator(1), 8, 6, 3),
            new LoraConfig { Rank = 2, Alpha = 1e37, Scaling = LoraScaling.Alpha, TargetModules = ["layers.3"] },
                new TorchGenerator(3));
        peft.LoraLayers().Single().Value.LoraB["default"].Weight.Data.Fill(1e10f);
        Module merged = peft.MergeAndUnload();
        var ex = Assert.Throws<ArithmeticException>(() => ModelFile.RequireFinite(merged, "merge"));
        Assert.That(ex!.Message, Does.StartWith("merge: layers.3.weight element 0 is"));
    }

    [Test]
    public void TheSvdOfAMatrixHoldingNaNIsRefusedWithAClearMessage()
    {
        var model = new Mlp(new TorchGenerator(1), 8, 6, 3);
        model.StateDict()["layers.3.weight"].Data[4] = float.NaN;
        var ex = Assert.Throws<ArgumentException>(() => LoraModel.GetPeftModel(model,
            new LoraConfig { Rank = 2, Init = LoraInit.Svd, TargetModules = ["layers.3"] }, new TorchGenerator(3)));
        Assert.That(ex!.Message, Does.Contain("layers.3").And.Contain("NaN"));
    }

    [Test]
    public void AFifoGivenAsModelAdapterConfigOrDatasetIsRefusedInsteadOfBlocking()
    {
        string fifo = SpecialFiles.Fifo(_files.PathOf("fifo"));
        var model = new Mlp(new TorchGenerator(1), 8, 6, 3);
        foreach (var (what, load) in new (string, Action)[]
        {
            ("model", () => ModelFile.Load(model, fifo)),
            ("safetensors", () => SafeTensors.Read(fifo)),
            ("adapter config", () => AdapterConfigFile.Read(fifo)),
            ("IDX labels", () => IdxReader.ReadLabels(fifo)),
            ("IDX images", () => IdxReader.ReadImages(fifo)),
        })
        {
            var ex = SpecialFiles.Within(TimeSpan.FromSeconds(10), load, fifo);
            Assert.That(ex, Is.InstanceOf<InvalidDataFormatException>(), what);
            Assert.That(ex!.Message, Does.StartWith(fifo).And.Contain("not a regular file"), what);
        }
    }

    [Test]
    public void ADeviceOrADirectoryGivenAsAModelIsRefused()
    {
        var model = new Mlp(new TorchGenerator(1), 8, 6, 3);
        if (File.Exists("/dev/zero"))
        {
            var dev = SpecialFiles.Within(TimeSpan.FromSeconds(10), () => ModelFile.Load(model, "/dev/zero"));
            Assert.That(dev, Is.InstanceOf<InvalidDataFormatException>());
            Assert.That(dev!.Message, Does.Contain("not a regular file"));
        }
        var dir = Assert.Throws<InvalidDataFormatException>(() => ModelFile.Load(model, _files.Directory));
        Assert.That(dir!.Message, Does.Contain("is a directory"));
    }

    /// <summary>A sparse file whose header names one 64 MiB tensor the model lacks: refused from the header
    /// alone.</summary>
    [Test]
    public void AnUnexpectedHugeTensorIsRefusedFromTheHeaderBeforeAnyDataIsRead()
    {
        const int elements = 16 << 20;
        string header = $"{{\"evil\":{{\"dtype\":\"F32\",\"shape\":[{elements}],\"data_offsets\":[0," +
            $"{4L * elements}]}}}}";
        byte[] h = Encoding.UTF8.GetBytes(header);
        string path = _files.PathOf("sparse.safetensors");
        using (var f = new FileStream(path, FileMode.CreateNew))
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)h.Length);
            f.Write(len);
            f.Write(h);
            f.SetLength(8 + h.Length + 4L * elements);   // sparse: no data written
        }
        var model = new Mlp(new TorchGenerator(1), 8, 6, 3);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.Throws<InvalidDataFormatException>(() => ModelFile.Load(model, path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(ex!.Field, Is.EqualTo("evil"));
        Assert.That(ex.Message, Does.Contain("unexpected tensor"));
        TestContext.Out.WriteLine($"allocated {allocated:N0} bytes refusing a file that claims {4L * elements:N0} " +
            "data bytes");
        Assert.That(allocated, Is.LessThan(1 << 20));
    }

    /// <summary>A load reads straight into the parameters: it allocates far less than the model's own bytes (it used to
    /// hold the file's bytes and floats).</summary>
    [Test]
    public void LoadingTheBlogMlpAllocatesLessThanATenthOfItsWeights()
    {
        var source = Mlp.Blog(new TorchGenerator(1));
        string path = _files.PathOf("blog.safetensors");
        ModelFile.Save(source, path);
        var target = Mlp.Blog(new TorchGenerator(2));
        long weightBytes = 4L * target.ParameterCount();
        ModelFile.Load(target, path);   // warm-up (JIT, static tables)
        long before = GC.GetAllocatedBytesForCurrentThread();
        ModelFile.Load(target, path);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        before = GC.GetAllocatedBytesForCurrentThread();
        // what the load did before issue 18: the whole file as floats, through a byte copy per tensor
        _ = SafeTensors.Read(path);
        long whole = GC.GetAllocatedBytesForCurrentThread() - before;
        TestContext.Out.WriteLine($"ModelFile.Load of the blog MLP ({weightBytes:N0} weight bytes) allocated " +
            $"{allocated:N0} bytes; SafeTensors.Read of the same file {whole:N0}");
        Assert.That(allocated, Is.LessThan(weightBytes / 10));
        foreach (var (name, p) in source.NamedParameters())
            Assert.That(target.StateDict()[name].Array, Is.EqualTo(p.Array), name);
    }

    /// <summary>Tensors of every float dtype, larger than the 64 KiB conversion buffer, load into targets as <see
    /// cref="SafeTensors.Read(string)"/> reads them.</summary>
    [TestCase("F16")]
    [TestCase("BF16")]
    [TestCase("F64")]
    [TestCase("F32")]
    public void LoadIntoMatchesReadForEveryDtypeAcrossBufferBoundaries(string dtype)
    {
        const int count = 70_001;
        int size = dtype switch { "F16" or "BF16" => 2, "F32" => 4, _ => 8 };
        var data = new byte[count * size];
        for (int i = 0; i < count; i++)
        {
            float v = (i % 977) / 64f - 7f;
            Span<byte> at = data.AsSpan(i * size, size);
            switch (dtype)
            {
                case "F16": BinaryPrimitives.WriteHalfLittleEndian(at, (Half)v); break;
                case "BF16": BinaryPrimitives.WriteUInt16LittleEndian(at,
                    (ushort)(BitConverter.SingleToInt32Bits(v) >> 16)); break;
                case "F32": BinaryPrimitives.WriteSingleLittleEndian(at, v); break;
                default: BinaryPrimitives.WriteDoubleLittleEndian(at, v); break;
            }
        }
        byte[] h = Encoding.UTF8.GetBytes($"{{\"w\":{{\"dtype\":\"{dtype}\",\"shape\":[{count}]," +
            $"\"data_offsets\":[0,{data.Length}]}}}}");
        var file = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)h.Length);
        h.CopyTo(file, 8);
        data.CopyTo(file, 8 + h.Length);
        string path = _files.Write($"{dtype}.safetensors", file);
        var target = new float[count];
        SafeTensors.LoadInto(path, new Dictionary<string, (int[], Memory<float>)> { ["w"] = ([count], target) });
        Assert.That(target, Is.EqualTo(SafeTensors.Read(path).Tensors["w"].Array));
    }

    /// <summary>What a kill between the two renames of an adapter save leaves: new weights beside the old
    /// config.</summary>
    [Test]
    public void AnAdapterFolderMixingTwoSavesIsRefused()
    {
        PeftModel Adapter(double alpha, ulong seed) => LoraModel.GetPeftModel(new Mlp(new TorchGenerator(1), 8, 6, 3),
            new LoraConfig { Rank = 2, Alpha = alpha, Init = LoraInit.Gaussian, TargetModules = ["layers.3"] },
                new TorchGenerator(seed));
        string old = _files.PathOf("old"), fresh = _files.PathOf("new");
        Adapter(4, 3).SaveAdapter(old);
        Adapter(8, 4).SaveAdapter(fresh);
        Assert.DoesNotThrow(() => PeftModel.FromPretrained(new Mlp(new TorchGenerator(1), 8, 6, 3), old), "an intact " +
            "folder loads");
        File.Copy(Path.Combine(fresh, AdapterFiles.WeightsFileName), Path.Combine(old, AdapterFiles.WeightsFileName),
            overwrite: true);
        var ex = Assert.Throws<InvalidDataFormatException>(() => PeftModel.FromPretrained(new Mlp(new TorchGenerator(1),
            8, 6, 3), old))!;
        Assert.That(ex.Field, Is.EqualTo(AdapterFiles.ConfigHashKey));
        Assert.That(ex.Message, Does.Contain("mixes two saves"));
    }
}
