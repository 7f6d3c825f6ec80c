using LoRA.Managed.Autograd;
using LoRA.Managed.IO;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Nn;

using static LoRA.Managed.Tests.Models.LiveAdapterFixture;

namespace LoRA.Managed.Tests.Models;

/// <summary>
/// Live adapters by name on one loaded base (issue 15), as PEFT's <c>load_adapter</c>, <c>set_adapter</c>,
/// <c>delete_adapter</c> and <c>unload</c>: switching gives exactly the outputs of a model loaded with that adapter
/// alone, deleting frees the factors, unloading gives the base back.
/// </summary>
public class HfAdapterManagementTests
{
    [Test]
    public void SwitchingAdaptersGivesExactlyTheOutputsOfEachAlone()
    {
        var (_, peft) = HfCombineTwinTests.LoadAll();
        Assert.That(peft.ActiveAdapter, Is.EqualTo("combine-a"), "a loaded adapter does not become active");
        foreach (string name in new[] { "combine-b", "combine-c", "combine-a", "combine-c" })
        {
            peft.SetAdapter(name);
            Assert.That(Logits(peft), Is.EqualTo(Alone(name)), name);
        }
        Assert.That(Logits(peft), Is.Not.EqualTo(Alone("combine-a")));
    }

    [Test]
    public void LoadedAdapterTrainsOnlyOnceActive()
    {
        var (_, peft) = HfCombineTwinTests.LoadAll();
        var names = peft.NamedParameters().Where(p => p.Value.RequiresGrad).Select(p => p.Key).ToList();
        Assert.That(names, Is.Not.Empty.And.All.Contains(".combine-a."));
        peft.SetAdapter("combine-b");
        names = peft.NamedParameters().Where(p => p.Value.RequiresGrad).Select(p => p.Key).ToList();
        Assert.That(names, Is.Not.Empty.And.All.Contains(".combine-b."));
    }

    [Test]
    public void DeletingFreesTheFactorsAndAnActiveOneHandsOverAsPeft()
    {
        var (_, peft) = HfCombineTwinTests.LoadAll();
        long before = peft.AllParameterCount;
        peft.SetAdapter("combine-c");
        peft.DeleteAdapter("combine-c");
        // PEFT's delete_adapter: the deleted active adapter is replaced by the first remaining one by name.
        Assert.That(peft.ActiveAdapter, Is.EqualTo("combine-a"));
        Assert.That(peft.Adapters.Keys, Is.EquivalentTo(new[] { "combine-a", "combine-b" }));
        Assert.That(peft.StateDict().Keys.Any(k => k.Contains(".combine-c.")), Is.False);
        Assert.That(peft.AllParameterCount, Is.EqualTo(before - 2 * 2 * (16 + 32) - 2 * 2 * (16 + 16)));
        Assert.That(Logits(peft), Is.EqualTo(Alone("combine-a")));

        Assert.Throws<KeyNotFoundException>(() => peft.DeleteAdapter("combine-c"));
        peft.DeleteAdapter("combine-a");
        peft.DeleteAdapter("combine-b");
        Assert.That(peft.ActiveAdapter, Is.EqualTo(""));
        Assert.That(Logits(peft), Is.EqualTo(Logits(HfModel.Load(Folder))));
    }

    [Test]
    public void DeletingAMergedAdapterIsRefused()
    {
        var (_, peft) = HfCombineTwinTests.LoadAll();
        peft.Merge();
        var ex = Assert.Throws<InvalidOperationException>(() => peft.DeleteAdapter("combine-a"));
        Assert.That(ex!.Message, Does.Contain("'combine-a'").And.Contain("Unmerge"));
        Assert.That(peft.Adapters.Keys, Has.Member("combine-a"));
        peft.Unmerge();
        peft.DeleteAdapter("combine-a");
    }

    [Test]
    public void UnloadGivesTheBaseBack()
    {
        var (model, peft) = HfCombineTwinTests.LoadAll();
        peft.SetAdapter("combine-b");
        var unloaded = peft.Unload();
        Assert.That(unloaded, Is.SameAs(model));
        Assert.That(model.NamedModules().Any(m => m.Value is LoraLinear), Is.False);
        Assert.That(model.StateDict().Keys, Is.EquivalentTo(HfModel.Load(Folder).StateDict().Keys));
        Assert.That(Logits(model), Is.EqualTo(Logits(HfModel.Load(Folder))));
        Assert.That(peft.Adapters, Is.Empty);
    }

    [Test]
    public void MergeAndUnloadStillMergesTheActiveAdapter()
    {
        var (model, peft) = HfCombineTwinTests.LoadAll();
        peft.SetAdapter("combine-c");
        peft.MergeAndUnload();
        HfModelTwinTests.AssertClose(Logits(model), Alone("combine-c"), 1e-4, "merged");
    }

    [Test]
    public void LoadAdapterRefusesBadInputWithoutChangingTheModel()
    {
        var (_, peft) = HfCombineTwinTests.LoadAll();
        Assert.Throws<ArgumentException>(() => peft.LoadAdapter(Path.Combine(Folder, "combine-a"), "combine-b"));
        string gpt2Adapter = Path.Combine(HfFixtures.Folder("gpt2-tiny"), "adapter");
        Assert.Throws<InvalidDataFormatException>(() => peft.LoadAdapter(gpt2Adapter, "other"));
        Assert.Throws<FileNotFoundException>(() => peft.LoadAdapter(Path.Combine(Folder, "missing"), "other"));
        Assert.That(peft.Adapters.Keys, Is.EquivalentTo(new[] { "combine-a", "combine-b", "combine-c" }));
        Assert.That(peft.LoraLayers().Any(l => l.Value.Adapters.Contains("other")), Is.False);
    }
}
