using LoRA.Managed.Autograd;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

using static LoRA.Managed.Tests.Models.LiveAdapterFixture;

namespace LoRA.Managed.Tests.Models;

/// <summary>
/// Live adapter management (PEFT's <c>load_adapter</c>, <c>set_adapter</c>, <c>delete_adapter</c>, <c>unload</c>,
/// <c>merge_and_unload</c>, <c>disable_adapter</c>) with adapters on <c>embed_tokens</c> beside <c>q_proj</c>: the
/// embedding layers follow exactly as the Linear ones do.
/// </summary>
public class HfEmbeddingAdapterManagementTests
{
    private static readonly string Emb = Path.Combine(Folder, "embedding-adapter");

    /// <summary>A second adapter on embed_tokens and q_proj (rank 2, every factor non-zero), saved to
    /// <paramref name="directory"/>.</summary>
    internal static void SaveOther(string directory)
    {
        var config = new LoraConfig { Rank = 2, Alpha = 6, TargetModules = ["embed_tokens", "q_proj"] };
        var peft = LoraModel.GetPeftModel(HfModel.Load(Folder), config, new TorchGenerator(31));
        var g = new TorchGenerator(32);
        foreach (var (_, layer) in peft.EmbeddingLayers())
        {
            g.FillNormal(layer.LoraEmbeddingA["default"].Data, 0f, 0.5f);
            g.FillNormal(layer.LoraEmbeddingB["default"].Data, 0f, 0.5f);
        }
        foreach (var (_, layer) in peft.LoraLayers()) g.FillNormal(layer.LoraB["default"].Weight.Data, 0f, 0.5f);
        peft.SaveAdapter(directory);
    }

    private static PeftModel LoadBoth(string other, out CausalLm model)
    {
        model = HfModel.Load(Folder);
        var peft = PeftModel.FromPretrained(model, Emb, adapterName: "first");
        peft.LoadAdapter(other, "other");
        return peft;
    }

    [Test]
    public void UnloadGivesTheBaseLogitsExactly()
    {
        CausalLm model = HfModel.Load(Folder);
        float[] plain = Logits(HfModel.Load(Folder));
        var peft = PeftModel.FromPretrained(model, Emb);
        Assert.That(Logits(peft), Is.Not.EqualTo(plain));
        Assert.That(peft.Unload(), Is.SameAs(model));
        Assert.That(model.NamedModules().Any(m => m.Value is LoraEmbedding or LoraLinear), Is.False);
        Assert.That(model.StateDict().Keys, Is.EquivalentTo(HfModel.Load(Folder).StateDict().Keys));
        Assert.That(Logits(model), Is.EqualTo(plain));
    }

    [Test]
    public void SwitchingBetweenTwoEmbeddingAdaptersGivesEachOnesLogitsExactly()
    {
        using var dir = new HfFixtures.TempDir();
        SaveOther(dir.Path);
        var peft = LoadBoth(dir.Path, out _);
        Assert.That(peft.EmbeddingLayers().Single().Value.Adapters, Is.EqualTo(new[] { "first", "other" }));
        float[] first = Alone(Emb), other = Alone(dir.Path);
        Assert.That(first, Is.Not.EqualTo(other));
        foreach (string name in new[] { "first", "other", "first", "other" })
        {
            peft.SetAdapter(name);
            Assert.That(Logits(peft), Is.EqualTo(name == "first" ? first : other), name);
        }
        peft.AdaptersDisabled = true;
        Assert.That(Logits(peft), Is.EqualTo(Logits(HfModel.Load(Folder))), "disabled");
        peft.AdaptersDisabled = false;
        Assert.That(Logits(peft), Is.EqualTo(other));
    }

    [Test]
    public void OnlyTheActiveAdaptersEmbeddingFactorsTrain()
    {
        using var dir = new HfFixtures.TempDir();
        SaveOther(dir.Path);
        var peft = LoadBoth(dir.Path, out _);
        foreach (string name in new[] { "other", "first" })
        {
            peft.SetAdapter(name);
            var names = peft.NamedParameters().Where(p => p.Value.RequiresGrad).Select(p => p.Key).ToList();
            Assert.That(names, Has.Some.EndsWith($"embed_tokens.lora_embedding_A.{name}"), name);
            Assert.That(names, Has.Some.EndsWith($"embed_tokens.lora_embedding_B.{name}"), name);
            Assert.That(names, Is.All.Contains($".{name}"), name);
        }
    }

    [Test]
    public void DeleteRemovesTheEmbeddingFactorsToo()
    {
        using var dir = new HfFixtures.TempDir();
        SaveOther(dir.Path);
        var peft = LoadBoth(dir.Path, out _);
        long before = peft.AllParameterCount;
        var table = peft.EmbeddingLayers().Single().Value;
        int vocab = table.BaseLayer.NumEmbeddings, dim = table.BaseLayer.EmbeddingDim;
        long qProj = peft.LoraLayers().Where(l => l.Value.Adapters.Contains("first"))
            .Sum(l => l.Value.LoraA["first"].ParameterCount() + l.Value.LoraB["first"].ParameterCount());
        peft.DeleteAdapter("first");
        Assert.That(peft.ActiveAdapter, Is.EqualTo("other"));
        Assert.That(table.Adapters, Is.EqualTo(new[] { "other" }));
        Assert.That(table.LoraEmbeddingA.Contains("first") || table.LoraEmbeddingB.Contains("first"), Is.False);
        Assert.That(peft.StateDict().Keys.Any(k => k.EndsWith(".first", StringComparison.Ordinal)
            || k.Contains(".first.", StringComparison.Ordinal)), Is.False);
        Assert.That(peft.AllParameterCount, Is.EqualTo(before - qProj - 4L * (vocab + dim)));
        Assert.That(Logits(peft), Is.EqualTo(Alone(dir.Path)));

        peft.DeleteAdapter("other");
        Assert.That(table.Adapters, Is.Empty);
        Assert.That(Logits(peft), Is.EqualTo(Logits(HfModel.Load(Folder))));
    }

    [Test]
    public void DeletingAnAdapterMergedIntoTheEmbeddingIsRefused()
    {
        var peft = PeftModel.FromPretrained(HfModel.Load(Folder), Emb, adapterName: "first");
        peft.EmbeddingLayers().Single().Value.Merge();   // the table alone, so only the embedding can refuse
        var ex = Assert.Throws<InvalidOperationException>(() => peft.DeleteAdapter("first"));
        Assert.That(ex!.Message, Does.Contain("'first'").And.Contain("embed_tokens").And.Contain("Unmerge"));
        Assert.That(peft.LoraLayers().All(l => l.Value.Adapters.Contains("first")), Is.True, "nothing was deleted");
        peft.Unmerge();
        peft.DeleteAdapter("first");
    }

    [Test]
    public void Gpt2WithPlainDoraAndEmbeddingAdaptersSwitchesDeletesAndUnloads()
    {
        // GPT-2: c_attn in the Conv1D layout (plain and DoRA) and the tied wte, all three live on one base.
        string gpt2 = HfFixtures.Folder("gpt2-tiny");
        int[] ids = HfFixtures.Ints(HfFixtures.Expected("gpt2-tiny").GetProperty("ids"));
        float[] Run(ICausalLanguageModel m)
        {
            using (Tape.NoGrad()) return m.Forward(ids, 1, ids.Length).Data.ToArray();
        }
        string[] names = ["adapter", "dora-adapter", "embedding-adapter"];
        var alone = names.ToDictionary(n => n,
            n => Run(PeftModel.FromPretrained(HfModel.Load(gpt2), Path.Combine(gpt2, n))));
        CausalLm model = HfModel.Load(gpt2);
        var peft = PeftModel.FromPretrained(model, Path.Combine(gpt2, names[0]), adapterName: names[0]);
        foreach (string n in names.Skip(1)) peft.LoadAdapter(Path.Combine(gpt2, n), n);
        foreach (string n in new[] { "embedding-adapter", "dora-adapter", "adapter", "embedding-adapter" })
        {
            peft.SetAdapter(n);
            Assert.That(Run(peft), Is.EqualTo(alone[n]), n);
        }
        peft.DeleteAdapter("embedding-adapter");
        Assert.That(peft.ActiveAdapter, Is.EqualTo("adapter"));
        Assert.That(peft.EmbeddingLayers().Single().Value.Adapters, Is.Empty);
        Assert.That(Run(peft), Is.EqualTo(alone["adapter"]));
        peft.SetAdapter("dora-adapter");
        Assert.That(Run(peft), Is.EqualTo(alone["dora-adapter"]));
        Assert.That(peft.Unload(), Is.SameAs(model));
        Assert.That(model.NamedModules().Any(m => m.Value is LoraEmbedding or LoraLinear), Is.False);
        Assert.That(Run(model), Is.EqualTo(Run(HfModel.Load(gpt2))));
    }

    [Test]
    public void MergeAndUnloadMergesTheActiveEmbeddingAdapter()
    {
        using var dir = new HfFixtures.TempDir();
        SaveOther(dir.Path);
        var peft = LoadBoth(dir.Path, out CausalLm model);
        peft.SetAdapter("other");
        float[] adapted = Logits(peft);
        // Merged, the tied head sees the merged table as well (as in PEFT), so compare with a merged twin.
        var alone = PeftModel.FromPretrained(HfModel.Load(Folder), dir.Path);
        Module merged = alone.MergeAndUnload();
        Assert.That(peft.MergeAndUnload(), Is.SameAs(model));
        Assert.That(model.NamedModules().Any(m => m.Value is LoraEmbedding or LoraLinear), Is.False);
        Assert.That(Logits(model), Is.EqualTo(Logits((ICausalLanguageModel)merged)));
        Assert.That(Logits(model), Is.Not.EqualTo(adapted));
    }
}
