using LoRA.Managed.Models;
using LoRA.Managed.IO;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.IO;

/// <summary>
/// Saving goes through atomic writes (an interrupted save leaves the previous model or adapter whole), and loading
/// refuses files that do not fit, naming the file, the tensor and both shapes.
/// </summary>
public class AdapterSaveLoadTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() =>
        Directory.CreateDirectory(_dir = Path.Combine(TestContext.CurrentContext.WorkDirectory,
            $"save-{Guid.NewGuid():N}"));

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static readonly LoraConfig Config = new() { Rank = 2, Alpha = 4, TargetModules = ["layers.3"] };

    private static PeftModel Adapted(ulong adapterSeed, int hidden = 6)
    {
        var peft = LoraModel.GetPeftModel(new Mlp(new TorchGenerator(1), 8, hidden, 3), Config, new TorchGenerator(2));
        var g = new TorchGenerator(adapterSeed);
        foreach (var p in peft.TrainableParameters()) g.FillUniform(p.Data, -1f, 1f);
        return peft;
    }

    private string[] Snapshot(string dir) =>
        Directory.GetFiles(dir).Order(StringComparer.Ordinal)
            .Select(f => Path.GetFileName(f) + ":" + Convert.ToHexString(File.ReadAllBytes(f))).ToArray();

    [Test]
    public void ModelSaveThatCannotCompleteLeavesThePreviousFileAndNoTemporary()
    {
        string path = Path.Combine(_dir, "model.safetensors");
        var model = new Mlp(new TorchGenerator(1), 8, 6, 3);
        ModelFile.Save(model, path);
        byte[] before = File.ReadAllBytes(path);

        // The rename cannot complete over a directory: the save fails after writing its temporary file.
        string blocked = Path.Combine(_dir, "blocked.safetensors");
        Directory.CreateDirectory(blocked);
        Assert.Throws(Is.InstanceOf<IOException>().Or.InstanceOf<UnauthorizedAccessException>(),
            () => ModelFile.Save(new Mlp(new TorchGenerator(9), 8, 6, 3), blocked));
        Assert.That(Directory.GetFiles(_dir), Is.EqualTo(new[] { path }), "no temporary file left");
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before));
    }

    [Test]
    public void AdapterSaveFailingOnTheConfigLeavesTheOldAdapterWhole()
    {
        string dir = Path.Combine(_dir, "adapter");
        Adapted(3).SaveAdapter(dir);
        string[] before = Snapshot(dir);

        // Make adapter_config.json un-replaceable: weights are written and renamed first, then the config's rename
        // fails.
        string config = Path.Combine(dir, AdapterConfigFile.FileName);
        byte[] configBytes = File.ReadAllBytes(config);
        File.Delete(config);
        Directory.CreateDirectory(config);
        Assert.Throws(Is.InstanceOf<IOException>().Or.InstanceOf<UnauthorizedAccessException>(),
            () => Adapted(4).SaveAdapter(dir));
        Directory.Delete(config);
        File.WriteAllBytes(config, configBytes);

        Assert.That(Snapshot(dir), Is.EqualTo(before), "the weights were put back and nothing else was left behind");
        var loaded = PeftModel.FromPretrained(new Mlp(new TorchGenerator(1), 8, 6, 3), dir);
        Assert.That(loaded.StateDict()["layers.3.lora_A.default.weight"].Array,
            Is.EqualTo(Adapted(3).StateDict()["layers.3.lora_A.default.weight"].Array));
    }

    [Test]
    public void AdapterSaveReplacesBothFiles()
    {
        string dir = Path.Combine(_dir, "adapter");
        Adapted(3).SaveAdapter(dir);
        Adapted(4).SaveAdapter(dir);
        Assert.That(Directory.GetFiles(dir).Select(Path.GetFileName).Order(),
            Is.EqualTo(new[] { AdapterFiles.WeightsFileName, AdapterConfigFile.FileName }.Order()));
        var loaded = PeftModel.FromPretrained(new Mlp(new TorchGenerator(1), 8, 6, 3), dir);
        Assert.That(loaded.StateDict()["layers.3.lora_B.default.weight"].Array,
            Is.EqualTo(Adapted(4).StateDict()["layers.3.lora_B.default.weight"].Array));
    }

    [Test]
    public void AdapterOnABaseOfOtherShapesNamesTheTensorAndBothShapes()
    {
        string dir = Path.Combine(_dir, "adapter");
        Adapted(3, hidden: 6).SaveAdapter(dir);
        var narrower = new Mlp(new TorchGenerator(1), 8, 5, 3);
        var ex = Assert.Throws<InvalidDataFormatException>(() => PeftModel.FromPretrained(narrower, dir,
            verifyBaseChecksum: false));
        Assert.That(ex!.File, Is.EqualTo(Path.Combine(dir, AdapterFiles.WeightsFileName)));
        Assert.That(ex.Field, Is.EqualTo("base_model.model.layers.3.lora_A.weight"));
        Assert.That(ex.Message, Does.Contain("[2, 6]").And.Contain("[2, 5]"));
    }

    [Test]
    public void AdapterForAnotherBaseIsRefusedByChecksum()
    {
        string dir = Path.Combine(_dir, "adapter");
        Adapted(3).SaveAdapter(dir);
        var other = new Mlp(new TorchGenerator(77), 8, 6, 3);   // same shapes, other weights
        var ex = Assert.Throws<InvalidOperationException>(() => PeftModel.FromPretrained(other, dir));
        Assert.That(ex!.Message,
            Does.Contain(AdapterFiles.WeightsFileName).And.Contain("checksum").And.Contain(
                BaseChecksum.Compute(other)));
        Assert.That(other.Layers[3], Is.TypeOf<Linear>(), "the model is untouched");
    }

    [Test]
    public void AdapterConfigTargetingAMissingModuleNamesTargetModules()
    {
        string dir = Path.Combine(_dir, "adapter");
        Adapted(3).SaveAdapter(dir);
        string config = Path.Combine(dir, AdapterConfigFile.FileName);
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"layers.3\"", "\"layers.9\""));
        var ex = Assert.Throws<InvalidDataFormatException>(() =>
            PeftModel.FromPretrained(new Mlp(new TorchGenerator(1), 8, 6, 3), dir));
        Assert.That(ex!.File, Is.EqualTo(config));
        Assert.That(ex.Field, Is.EqualTo("target_modules"));
        Assert.That(ex.Message, Does.Contain("layers.9"));
    }

    [Test]
    public void ModelFileWithAMissingTensorNamesIt()
    {
        string path = Path.Combine(_dir, "m.safetensors");
        var model = new Mlp(new TorchGenerator(1), 8, 6, 3);
        var state = model.StateDict().Where(p => p.Key != "layers.3.bias").ToDictionary(p => p.Key, p => p.Value);
        SafeTensors.Write(path, state);
        var ex = Assert.Throws<InvalidDataFormatException>(() => ModelFile.Load(model, path));
        Assert.That((ex!.File, ex.Field), Is.EqualTo((path, "layers.3.bias")));
        Assert.That(ex.Message, Does.Contain("missing"));
    }

    [Test]
    public void ModelFileWithAnExtraTensorNamesIt()
    {
        string path = Path.Combine(_dir, "m.safetensors");
        var model = new Mlp(new TorchGenerator(1), 8, 6, 3);
        var state = model.StateDict().ToDictionary(p => p.Key, p => p.Value);
        state["layers.7.weight"] = new Tensor(2, 2);
        SafeTensors.Write(path, state);
        var ex = Assert.Throws<InvalidDataFormatException>(() => ModelFile.Load(model, path));
        Assert.That((ex!.File, ex.Field), Is.EqualTo((path, "layers.7.weight")));
        Assert.That(ex.Message, Does.Contain("unexpected"));
    }

    [Test]
    public void ModelFileWithAMisShapedTensorNamesItAndBothShapes()
    {
        string path = Path.Combine(_dir, "m.safetensors");
        var model = new Mlp(new TorchGenerator(1), 8, 6, 3);
        var state = model.StateDict().ToDictionary(p => p.Key, p => p.Value);
        state["layers.1.weight"] = new Tensor(8, 6);   // transposed
        SafeTensors.Write(path, state);
        float[] before = model.Parameters().SelectMany(p => p.Array).ToArray();
        var ex = Assert.Throws<InvalidDataFormatException>(() => ModelFile.Load(model, path));
        Assert.That((ex!.File, ex.Field), Is.EqualTo((path, "layers.1.weight")));
        Assert.That(ex.Message, Does.Contain("[8, 6]").And.Contain("[6, 8]"));
        Assert.That(model.Parameters().SelectMany(p => p.Array).ToArray(), Is.EqualTo(before), "nothing loaded");
    }
}
