using LoRA.Managed.Autograd;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Nn;

using static LoRA.Managed.Tests.Models.LiveAdapterFixture;

namespace LoRA.Managed.Tests.Models;

/// <summary>
/// A DoRA adapter among plain ones on one live model (PEFT's <c>load_adapter</c>, <c>set_adapter</c>,
/// <c>delete_adapter</c>, <c>unload</c>): switching gives exactly the logits of a model loaded with each alone,
/// deleting removes the magnitude vectors too, and what a merged adapter forbids is refused before anything changes.
/// </summary>
public class HfDoraAdapterManagementTests
{
    private static List<string> Trainable(PeftModel peft) =>
        peft.NamedParameters().Where(p => p.Value.RequiresGrad).Select(p => p.Key).ToList();

    [Test]
    public void DoraLoadedBesidePlainAdaptersSwitchesExactly()
    {
        var (_, peft) = HfCombineTwinTests.Load("combine-a", "dora-adapter", "combine-b");
        float[] dora = Alone("dora-adapter"), a = Alone("combine-a"), b = Alone("combine-b");
        foreach (string name in new[] { "dora-adapter", "combine-a", "dora-adapter", "combine-b", "dora-adapter" })
        {
            peft.SetAdapter(name);
            Assert.That(Logits(peft), Is.EqualTo(name == "dora-adapter" ? dora : name == "combine-a" ? a : b), name);
        }
        Assert.That(Trainable(peft), Has.Some.EndsWith(".lora_magnitude_vector.dora-adapter.weight")
            .And.All.Contains(".dora-adapter."));
        peft.SetAdapter("combine-a");
        Assert.That(Trainable(peft), Has.None.Contains("magnitude").And.All.Contains(".combine-a."));
    }

    [Test]
    public void PlainLoadedBesideDoraSwitchesExactly()
    {
        var (_, peft) = HfCombineTwinTests.Load("dora-adapter", "combine-c");
        Assert.That(Logits(peft), Is.EqualTo(Alone("dora-adapter")));
        peft.SetAdapter("combine-c");
        Assert.That(Logits(peft), Is.EqualTo(Alone("combine-c")));
        peft.AdaptersDisabled = true;
        Assert.That(Logits(peft), Is.EqualTo(Logits(HfModel.Load(Folder))));
    }

    [Test]
    public void DeletingADoraAdapterRemovesItsMagnitudes()
    {
        var (_, peft) = HfCombineTwinTests.Load("combine-a", "dora-adapter");
        long before = peft.AllParameterCount;
        long dora = peft.NamedParameters().Where(p => p.Key.Contains(".dora-adapter.", StringComparison.Ordinal))
            .Sum(p => (long)p.Value.Data.Length);
        Assert.That(peft.NamedParameters().Count(p => p.Key.Contains("lora_magnitude_vector.dora-adapter")),
            Is.EqualTo(6), "q_proj, v_proj, down_proj in two layers");
        peft.SetAdapter("dora-adapter");
        peft.DeleteAdapter("dora-adapter");
        Assert.That(peft.ActiveAdapter, Is.EqualTo("combine-a"));
        Assert.That(peft.StateDict().Keys, Has.None.Contains(".dora-adapter."));
        Assert.That(peft.LoraLayers().Any(l => l.Value.IsDora("dora-adapter")), Is.False);
        Assert.That(peft.AllParameterCount, Is.EqualTo(before - dora));
        Assert.That(Logits(peft), Is.EqualTo(Alone("combine-a")));
        // The name is free again: loading it anew gives the same logits as before.
        peft.LoadAdapter(Path.Combine(Folder, "dora-adapter"), "dora-adapter");
        peft.SetAdapter("dora-adapter");
        Assert.That(Logits(peft), Is.EqualTo(Alone("dora-adapter")));
    }

    [Test]
    public void UnloadWithDoraGivesTheBaseBack()
    {
        var (model, peft) = HfCombineTwinTests.Load("dora-adapter", "combine-a");
        Assert.That(peft.Unload(), Is.SameAs(model));
        Assert.That(model.NamedModules().Any(m => m.Value is LoraLinear or AdapterDict<DoraMagnitude>), Is.False);
        Assert.That(model.StateDict().Keys, Is.EquivalentTo(HfModel.Load(Folder).StateDict().Keys));
        Assert.That(Logits(model), Is.EqualTo(Logits(HfModel.Load(Folder))));
    }

    [Test]
    public void MergeAndUnloadMergesTheActiveDoraAdapterAsAlone()
    {
        var (model, peft) = HfCombineTwinTests.Load("combine-a", "dora-adapter");
        peft.SetAdapter("dora-adapter");
        var alone = PeftModel.FromPretrained(HfModel.Load(Folder), Path.Combine(Folder, "dora-adapter"));
        Module merged = alone.MergeAndUnload();
        peft.MergeAndUnload();
        Assert.That(Logits(model), Is.EqualTo(Logits((ICausalLanguageModel)merged)));
    }

    [Test]
    public void AMergedDoraAdapterRefusesSwitchDeleteAndLoadWithoutChangingAnything()
    {
        var (_, peft) = HfCombineTwinTests.Load("dora-adapter", "combine-b");
        peft.Merge();
        float[] merged = Logits(peft);
        var active = peft.LoraLayers().ToDictionary(l => l.Key, l => l.Value.ActiveAdapter);

        var ex = Assert.Throws<InvalidOperationException>(() => peft.SetAdapter("combine-b"));
        Assert.That(ex!.Message, Does.Contain("'dora-adapter' is merged").And.Contain("Unmerge")
            .And.Contain("'combine-b'"));
        ex = Assert.Throws<InvalidOperationException>(() => peft.DeleteAdapter("dora-adapter"));
        Assert.That(ex!.Message, Does.Contain("'dora-adapter'").And.Contain("Unmerge"));
        ex = Assert.Throws<InvalidOperationException>(
            () => peft.LoadAdapter(Path.Combine(Folder, "combine-a"), "combine-a"));
        Assert.That(ex!.Message, Does.Contain("'combine-a'").And.Contain("merged").And.Contain("unmerge"));

        Assert.That(peft.ActiveAdapter, Is.EqualTo("dora-adapter"));
        Assert.That(peft.Adapters.Keys, Is.EquivalentTo(new[] { "dora-adapter", "combine-b" }));
        Assert.That(peft.LoraLayers().ToDictionary(l => l.Key, l => l.Value.ActiveAdapter), Is.EqualTo(active));
        Assert.That(Logits(peft), Is.EqualTo(merged));

        peft.Unmerge();
        peft.SetAdapter("combine-b");
        Assert.That(Logits(peft), Is.EqualTo(Alone("combine-b")));
    }
}
