using LoRA.Managed.Models;
using LoRA.Managed.IO;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.IO;

/// <summary>Whole-model files under PyTorch state_dict names, with strict checks before any change.</summary>
public class ModelFileTests
{
    private string _path = "";

    [SetUp]
    public void SetUp() =>
        _path = Path.Combine(TestContext.CurrentContext.WorkDirectory, $"model-{Guid.NewGuid():N}.safetensors");

    [TearDown]
    public void TearDown() => File.Delete(_path);

    [Test]
    public void SaveLoadRoundTripsBitForBitUnderPyTorchNames()
    {
        var a = new Mlp(new TorchGenerator(1), 8, 6, 3);
        var b = new Mlp(new TorchGenerator(2), 8, 6, 3);
        ModelFile.Save(a, _path);
        var file = SafeTensors.Read(_path);
        Assert.That(file.Tensors.Keys,
            Is.EquivalentTo(new[] { "layers.1.weight", "layers.1.bias", "layers.3.weight", "layers.3.bias" }));
        Assert.That(file.Metadata["format"], Is.EqualTo("pt"));
        ModelFile.Load(b, _path);
        foreach (var (name, p) in a.NamedParameters())
            Assert.That(b.StateDict()[name].Array, Is.EqualTo(p.Array), name);
    }

    [Test]
    public void WrongShapeIsRefusedBeforeAnythingChanges()
    {
        ModelFile.Save(new Mlp(new TorchGenerator(1), 8, 6, 3), _path);
        var other = new Mlp(new TorchGenerator(2), 8, 5, 3);
        float[] before = other.Parameters().SelectMany(p => p.Array).ToArray();
        var ex = Assert.Throws<InvalidDataFormatException>(() => ModelFile.Load(other, _path));
        Assert.That(ex!.Field, Is.EqualTo("layers.1.bias"));
        Assert.That(ex.Message, Does.Contain("[6]").And.Contain("[5]"));
        Assert.That(other.Parameters().SelectMany(p => p.Array).ToArray(), Is.EqualTo(before));
    }

    [Test]
    public void MissingAndUnexpectedTensorsAreNamed()
    {
        ModelFile.Save(new Mlp(new TorchGenerator(1), 8, 3), _path);
        var deeper = new Mlp(new TorchGenerator(2), 8, 3, 3);
        var ex = Assert.Throws<InvalidDataFormatException>(() => ModelFile.Load(deeper, _path));
        Assert.That(ex!.Field, Does.StartWith("layers."));
        Assert.That(ex.File, Is.EqualTo(_path));
    }
}
