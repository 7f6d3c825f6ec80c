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
}
