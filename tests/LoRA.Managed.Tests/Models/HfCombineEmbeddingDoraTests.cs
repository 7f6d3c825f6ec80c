using LoRA.Managed.Autograd;
using LoRA.Managed.Lora;
using LoRA.Managed.Models.Hf;

namespace LoRA.Managed.Tests.Models;

/// <summary>
/// <c>add_weighted_adapter</c> beside the two other features: embedding adapters combine (the twin values are in
/// <see cref="HfCombineTwinTests"/>), DoRA adapters are refused before anything changes (PEFT would drop their
/// magnitudes without a word).
/// </summary>
public class HfCombineEmbeddingDoraTests
{
    private static readonly string Folder = HfFixtures.Folder("llama-gqa-tied");
    private static readonly int[] Ids = HfFixtures.Ints(HfFixtures.Expected("llama-gqa-tied").GetProperty("ids"));

    [TestCase("combine-a", "dora-adapter")]
    [TestCase("dora-adapter", "combine-a")]
    public void DoraAdapterIsRefusedNamingItBeforeTheModelChanges(string first, string second)
    {
        var (_, peft) = HfCombineTwinTests.Load(first, second);
        long count = peft.AllParameterCount;
        foreach (var type in new[] { CombinationType.Linear, CombinationType.Cat, CombinationType.Svd })
        {
            var ex = Assert.Throws<ArgumentException>(
                () => peft.AddWeightedAdapter([first, second], [1, 1], "mix", type));
            Assert.That(ex!.Message, Does.Contain("'dora-adapter' uses DoRA").And.Not.Contain("\n"));
        }
        Assert.That(peft.Adapters.Keys, Is.EquivalentTo(new[] { first, second }));
        Assert.That(peft.AllParameterCount, Is.EqualTo(count));
        Assert.That(peft.LoraLayers().Any(l => l.Value.Adapters.Contains("mix")), Is.False);
    }

    [Test]
    public void CatOfEmbeddingAdaptersIsTheExactWeightedSumOfTheTableUpdates()
    {
        var (_, peft) = HfCombineTwinTests.Load("combine-emb-a", "combine-emb-c");
        peft.AddWeightedAdapter(["combine-emb-a", "combine-emb-c"], [0.3, -2.0], "mix", CombinationType.Cat);
        var table = peft.EmbeddingLayers().Single().Value;
        Assert.That(table.LoraEmbeddingA["mix"].Shape, Is.EqualTo(new[] { 6, table.BaseLayer.NumEmbeddings }));
        float[] a = table.DeltaWeight("combine-emb-a").Data.ToArray();
        float[] c = table.DeltaWeight("combine-emb-c").Data.ToArray();
        float[] mix = table.DeltaWeight("mix").Data.ToArray();
        for (int i = 0; i < mix.Length; i++)
            Assert.That(mix[i], Is.EqualTo(0.3 * a[i] - 2.0 * c[i]).Within(1e-5 * (1 + Math.Abs(mix[i]))), $"[{i}]");
    }

    [Test]
    public void CombinedEmbeddingAdapterSavesAndReloadsIdentically()
    {
        var (_, peft) = HfCombineTwinTests.Load("combine-emb-a", "combine-emb-b", "combine-emb-c");
        peft.AddWeightedAdapter(["combine-emb-a", "combine-emb-b", "combine-emb-c"], [0.5, 1.0, -0.7], "mix",
            CombinationType.Svd, svdRank: 3);
        using var dir = new HfFixtures.TempDir();
        peft.SaveAdapter(dir.Path, "mix");
        peft.SetAdapter("mix");
        float[] want, got;
        using (Tape.NoGrad()) want = peft.Forward(Ids, 1, Ids.Length).Data.ToArray();
        var fresh = PeftModel.FromPretrained(HfModel.Load(Folder), dir.Path);
        using (Tape.NoGrad()) got = fresh.Forward(Ids, 1, Ids.Length).Data.ToArray();
        Assert.That(got, Is.EqualTo(want));
        Assert.That(fresh.Config.TargetModules, Is.EquivalentTo(new[] { "embed_tokens", "q_proj", "v_proj" }));
        Assert.That(fresh.EmbeddingLayers().Single().Value.LoraEmbeddingA["default"].Shape[0], Is.EqualTo(3));
    }
}
