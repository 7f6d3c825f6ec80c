using LoRA.Managed.IO;
using LoRA.Managed.Kernels;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Models;

/// <summary>
/// A base quantised on load keeps the float32 base's fingerprint (<see cref="BaseChecksum"/>), taken while the
/// float32 values pass through the loader and kept in the quantised-weight cache: an adapter trained on an NF4 base
/// is checked against the float32 base and the other way round, and a different base is still refused.
/// </summary>
public class QuantizedChecksumTests
{
    public static readonly string[] Fixtures =
        ["gpt2-tiny", "llama-gqa-tied", "llama3-rope-sharded", "qwen2-bias-bf16"];

    private static HfFixtures.TempDir Copy(string fixture)
    {
        var dir = new HfFixtures.TempDir();
        foreach (string f in Directory.GetFiles(HfFixtures.Folder(fixture)))
            File.Copy(f, Path.Combine(dir.Path, Path.GetFileName(f)));
        return dir;
    }

    [Test]
    public void AQuantisedBaseHasTheFloatBasesChecksum(
        [ValueSource(nameof(Fixtures))] string name, [Values(BaseDType.Int8, BaseDType.Nf4)] BaseDType d)
    {
        using var dir = Copy(name);
        string f32 = BaseChecksum.Compute(HfModel.Load(dir.Path));
        Assert.That(f32, Has.Length.EqualTo(64));
        var cold = HfModel.Load(dir.Path, d);
        var warm = HfModel.Load(dir.Path, d);
        var uncached = HfModel.Load(dir.Path, new HfLoadOptions { BaseDType = d, QuantizedCache = false });
        Assert.That(cold.NamedModules().Any(m => m.Value is IQuantizableWeight { IsQuantized: true }));
        Assert.That(BaseChecksum.Compute(cold), Is.EqualTo(f32), "taken while loading");
        Assert.That(BaseChecksum.Compute(warm), Is.EqualTo(f32), "read from the cache");
        Assert.That(BaseChecksum.Compute(uncached), Is.EqualTo(f32));
        Assert.That(HfModel.Load(dir.Path).Float32Checksum, Is.Null, "a float32 model's is computed from its weights");
    }

    [Test]
    public void TheStreamedChecksumIsTheDefinition()
    {
        // ParameterChecksum fed in order equals BaseChecksum over a state, and refuses names out of order.
        var state = new Dictionary<string, Tensor>
        {
            ["b.weight"] = new Tensor([1f, -2f, 3.5f, 0f, 1e-8f, float.MaxValue], 2, 3), ["a"] = new Tensor([7f], 1),
        };
        using var c = new ParameterChecksum();
        c.Append("a", [1], [7f]);
        c.Append("b.weight", [2, 3], [1f, -2f, 3.5f, 0f, 1e-8f, float.MaxValue]);
        Assert.That(c.Finish(), Is.EqualTo(BaseChecksum.Compute(state)));
        c.Append("b", [1], [0f]);
        Assert.Throws<ArgumentException>(() => c.Append("a", [1], [0f]));
    }

    [Test]
    public void AdaptersMoveBetweenTheNf4AndFloatBasesWithTheirChecksumChecked()
    {
        using var dir = Copy("llama-gqa-tied");
        using var saved = new HfFixtures.TempDir();
        var config = new LoraConfig { Rank = 2, Alpha = 4, TargetModules = ["q_proj", "v_proj"] };
        var nf4 = LoraModel.GetPeftModel(HfModel.Load(dir.Path, BaseDType.Nf4), config, new TorchGenerator(3));
        nf4.SaveAdapter(saved.Path);
        var file = SafeTensors.Read(Path.Combine(saved.Path, AdapterFiles.WeightsFileName));
        string written = file.Metadata[AdapterFiles.ChecksumKey];
        Assert.That(written, Is.EqualTo(BaseChecksum.Compute(HfModel.Load(dir.Path))),
            "the float32 base's fingerprint");
        var onFloat = PeftModel.FromPretrained(HfModel.Load(dir.Path), saved.Path);
        Assert.That(onFloat.BaseChecksum, Is.EqualTo(written));

        using var fromFloat = new HfFixtures.TempDir();
        onFloat.SaveAdapter(fromFloat.Path);
        var onInt8 = PeftModel.FromPretrained(HfModel.Load(dir.Path, BaseDType.Int8), fromFloat.Path);
        Assert.That(onInt8.BaseChecksum, Is.EqualTo(written));

        // Another base (one weight changed) is refused whether quantised or not.
        using var other = Copy("llama-gqa-tied");
        QuantizedCacheTests.OverwriteTensors(Path.Combine(other.Path, "model.safetensors"),
            n => n.EndsWith("layers.0.mlp.up_proj.weight", StringComparison.Ordinal));
        foreach (var d in new[] { BaseDType.F32, BaseDType.Nf4 })
        {
            var ex = Assert.Throws<InvalidOperationException>(
                () => PeftModel.FromPretrained(HfModel.Load(other.Path, d), saved.Path));
            Assert.That(ex!.Message, Does.Contain("checksum").And.Contain(written));
        }
    }

    // gpt2-tiny with float32 Linears and its tied table in bf16: merging is allowed, the base is still partly
    // quantised.
    private static (CausalLm Model, PeftModel Peft) FloatLinearsQuantisedTable()
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder("gpt2-tiny"), new HfLoadOptions
        {
            BaseDType = BaseDType.F32, EmbeddingDType = BaseDType.Bf16, QuantizedCache = false,
        });
        var peft = LoraModel.GetPeftModel(model, new LoraConfig { Rank = 2, TargetModules = ["c_attn"] },
            new TorchGenerator(3));
        var g = new TorchGenerator(4);
        foreach (var p in peft.TrainableParameters()) g.FillNormal(p.Data, 0f, 0.1f);   // a merge that changes W
        return (model, peft);
    }

    [Test]
    public void AMergeForgetsTheRecordedFingerprint()
    {
        var (model, peft) = FloatLinearsQuantisedTable();
        Assert.That(model.Float32Checksum, Has.Length.EqualTo(64));
        peft.MergeAndUnload();
        Assert.That(model.Float32Checksum, Is.Null, "the float32 weights it described have changed");
        Assert.That(BaseChecksum.Compute(model), Is.Empty, "a partly quantised base with no record carries none");
        var (other, otherPeft) = FloatLinearsQuantisedTable();
        otherPeft.Merge();
        Assert.That(other.Float32Checksum, Is.Null);
    }

    [Test]
    public void AModelWithQuantisedWeightsIsNotWrittenAsAFloatFile()
    {
        var (model, peft) = FloatLinearsQuantisedTable();
        peft.MergeAndUnload();
        using var dir = new HfFixtures.TempDir();
        var e = Assert.Throws<InvalidOperationException>(() => HfModelWriter.Save(model, dir.Path));
        Assert.That(e!.Message, Does.Contain("wte").And.Contain("Bf16"));
        Assert.That(Directory.GetFiles(dir.Path), Is.Empty, "nothing written");
        var e2 = Assert.Throws<InvalidOperationException>(
            () => ModelFile.Save(model, Path.Combine(dir.Path, "m.safetensors")));
        Assert.That(e2!.Message, Does.Contain("wte"));
        Assert.That(Directory.GetFiles(dir.Path), Is.Empty, "nothing written");
    }
}
