using System.Text.Json;
using LoRA.Managed.Autograd;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Models;

/// <summary>
/// PEFT's <c>add_weighted_adapter</c> (issue 15) against a twin of its source
/// (tests/fixtures/hf/make_combine_fixtures.py): linear, cat and svd over three
/// adapters on the llama-gqa-tied fixture, some of them on layers the others lack. Factors must agree within 1e-5;
/// for svd the product B·A does (singular vectors' signs are arbitrary); the logits as every twin's.
/// </summary>
public class HfCombineTwinTests
{
    private static readonly string Folder = HfFixtures.Folder("llama-gqa-tied");

    internal static (CausalLm Model, PeftModel Peft) LoadAll()
    {
        CausalLm model = HfModel.Load(Folder);
        var peft = PeftModel.FromPretrained(model, Path.Combine(Folder, "combine-a"), adapterName: "combine-a");
        peft.LoadAdapter(Path.Combine(Folder, "combine-b"), "combine-b");
        peft.LoadAdapter(Path.Combine(Folder, "combine-c"), "combine-c");
        return (model, peft);
    }

    /// <summary>The base with <paramref name="adapters"/> loaded by folder name, the first one active.</summary>
    internal static (CausalLm Model, PeftModel Peft) Load(params string[] adapters)
    {
        CausalLm model = HfModel.Load(Folder);
        var peft = PeftModel.FromPretrained(model, Path.Combine(Folder, adapters[0]), adapterName: adapters[0]);
        foreach (string a in adapters.Skip(1)) peft.LoadAdapter(Path.Combine(Folder, a), a);
        return (model, peft);
    }

    /// <summary>Adapter <paramref name="name"/>'s A, B and scale on every layer that carries it: lora_A/lora_B of
    /// the Linear layers, lora_embedding_A/B of the embeddings.</summary>
    internal static Dictionary<string, (Tensor A, Tensor B, double Scale)> Factors(PeftModel peft, string name)
    {
        var factors = peft.LoraLayers().Where(l => l.Value.Adapters.Contains(name)).ToDictionary(p => p.Key,
            p => ((Tensor)p.Value.LoraA[name].Weight, (Tensor)p.Value.LoraB[name].Weight, p.Value.Scale(name)));
        foreach (var (key, e) in peft.EmbeddingLayers().Where(l => l.Value.Adapters.Contains(name)))
            factors[key] = (e.LoraEmbeddingA[name], e.LoraEmbeddingB[name], e.Scale(name));
        return factors;
    }

    /// <summary>s·B·A in double, rounded once (for an embedding, the transpose of its table's update).</summary>
    private static float[] Delta((Tensor A, Tensor B, double Scale) f) =>
        (f.Scale * (LowRank.ToMatrix(f.B) * LowRank.ToMatrix(f.A))).ToRowMajorArray().Select(v => (float)v).ToArray();

    [TestCase("linear")]
    [TestCase("cat")]
    [TestCase("svd")]
    [TestCase("emb_linear")]
    [TestCase("emb_cat")]
    [TestCase("emb_svd")]
    public void CombinationReproducesPeftsTwin(string key)
    {
        var expected = HfFixtures.Json(Path.Combine("llama-gqa-tied", "combine_expected.json")).GetProperty(key);
        string[] adapters = expected.GetProperty("adapters").EnumerateArray().Select(e => e.GetString()!).ToArray();
        var (model, peft) = Load(adapters);
        double[] weights = expected.GetProperty("weights").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var type = Enum.Parse<CombinationType>(expected.GetProperty("type").GetString()!, ignoreCase: true);
        int? svdRank = expected.GetProperty("svd_rank").ValueKind == JsonValueKind.Null ? null
            : expected.GetProperty("svd_rank").GetInt32();
        double? clamp = expected.GetProperty("clamp").ValueKind == JsonValueKind.Null ? null
            : expected.GetProperty("clamp").GetDouble();

        peft.AddWeightedAdapter(adapters, weights, "mix", type, svdRank, clamp);

        int rank = expected.GetProperty("rank").GetInt32();
        Assert.That(peft.Adapters["mix"].Rank, Is.EqualTo(rank));
        Assert.That(peft.Adapters["mix"].Alpha, Is.EqualTo(rank));
        Assert.That(peft.ActiveAdapter, Is.EqualTo(adapters[0]), "the combined adapter is not made active");
        var layers = Factors(peft, "mix");
        var want = expected.GetProperty("layers");
        Assert.That(layers.Keys, Is.EquivalentTo(want.EnumerateObject().Select(p => p.Name)));
        Assert.That(layers.Keys.Any(k => k.EndsWith("embed_tokens", StringComparison.Ordinal)),
            Is.EqualTo(key.StartsWith("emb_", StringComparison.Ordinal)));
        foreach (var (name, f) in layers)
        {
            Assert.That(f.Scale, Is.EqualTo(1.0));
            var w = want.GetProperty(name);
            if (type == CombinationType.Svd)
            {
                Close(Delta(f), HfFixtures.Floats(w.GetProperty("delta")), name + " ΔW");
                Assert.That(f.A.Shape[0], Is.EqualTo(rank));
            }
            else
            {
                Close(f.A.Data.ToArray(), HfFixtures.Floats(w.GetProperty("A")), name + " A");
                Close(f.B.Data.ToArray(), HfFixtures.Floats(w.GetProperty("B")), name + " B");
            }
        }

        peft.SetAdapter("mix");
        int[] ids = HfFixtures.Ints(HfFixtures.Expected("llama-gqa-tied").GetProperty("ids"));
        float[] logits;
        using (Tape.NoGrad()) logits = model.Forward(ids, 1, ids.Length).Data.ToArray();
        HfModelTwinTests.AssertClose(logits, HfFixtures.Floats(expected.GetProperty("logits")), 2e-4, key);
    }

    [Test]
    public void LinearRefusesUnequalRanksNamingThem()
    {
        var (_, peft) = LoadAll();
        var ex = Assert.Throws<ArgumentException>(() => peft.AddWeightedAdapter(["combine-a", "combine-c"], [1, 1],
            "mix", CombinationType.Linear));
        Assert.That(ex!.Message, Does.Contain("'combine-a' (r=4)").And.Contain("'combine-c' (r=2)"));
        Assert.That(peft.Adapters.Keys, Has.No.Member("mix"));
    }

    [Test]
    public void BadRequestsAreRefusedBeforeTheModelChanges()
    {
        var (_, peft) = LoadAll();
        Assert.Throws<ArgumentException>(() => peft.AddWeightedAdapter(["combine-a", "nope"], [1, 1], "mix",
            CombinationType.Cat));
        Assert.Throws<ArgumentException>(() => peft.AddWeightedAdapter(["combine-a"], [1, 2], "mix",
            CombinationType.Cat));
        Assert.Throws<ArgumentException>(() => peft.AddWeightedAdapter(["combine-a"], [1], "combine-b",
            CombinationType.Cat));
        Assert.Throws<ArgumentException>(() => peft.AddWeightedAdapter(["combine-a", "combine-b"], [1, 1], "mix",
            CombinationType.Svd, svdRank: 17));
        Assert.Throws<ArgumentException>(() => peft.AddWeightedAdapter(["combine-a", "combine-b"], [1, double.NaN],
            "mix", CombinationType.Svd));
        Assert.That(peft.Adapters.Keys, Is.EquivalentTo(new[] { "combine-a", "combine-b", "combine-c" }));
        Assert.That(peft.LoraLayers().Any(l => l.Value.Adapters.Contains("mix")), Is.False);
    }

    [Test]
    public void CatIsTheExactWeightedSumOfTheUpdates()
    {
        var (_, peft) = LoadAll();
        peft.AddWeightedAdapter(["combine-a", "combine-c"], [0.3, -2.0], "mix", CombinationType.Cat);
        foreach (var (name, layer) in peft.LoraLayers().Where(l => l.Value.Adapters.Contains("mix")))
        {
            float[] a = layer.DeltaWeight("combine-a").Data.ToArray(),
                c = layer.DeltaWeight("combine-c").Data.ToArray();
            float[] mix = layer.DeltaWeight("mix").Data.ToArray();
            for (int i = 0; i < mix.Length; i++)
                Assert.That(mix[i], Is.EqualTo(0.3 * a[i] - 2.0 * c[i]).Within(1e-5 * (1 + Math.Abs(mix[i]))), name);
        }
    }

    [Test]
    public void CombinedAdapterSavesAsAnOrdinaryPeftAdapter()
    {
        var (_, peft) = LoadAll();
        peft.AddWeightedAdapter(["combine-a", "combine-c"], [1.0, 0.5], "mix", CombinationType.Svd, svdRank: 2);
        using var dir = new HfFixtures.TempDir();
        peft.SaveAdapter(dir.Path, "mix");
        peft.SetAdapter("mix");
        int[] ids = HfFixtures.Ints(HfFixtures.Expected("llama-gqa-tied").GetProperty("ids"));
        float[] want, got;
        using (Tape.NoGrad()) want = peft.Forward(ids, 1, ids.Length).Data.ToArray();
        var fresh = PeftModel.FromPretrained(HfModel.Load(Folder), dir.Path);
        using (Tape.NoGrad()) got = fresh.Forward(ids, 1, ids.Length).Data.ToArray();
        Assert.That(got, Is.EqualTo(want));
        Assert.That(fresh.Config.Rank, Is.EqualTo(2));
        Assert.That(fresh.Config.TargetModules, Is.EquivalentTo(new[] { "q_proj", "v_proj" }));
    }

    // torch.quantile(torch.tensor([3., -1., .5, 2., -4., 7., 0.], dtype=torch.float64), q)
    [TestCase(0.0, -4.0)]
    [TestCase(0.25, -0.5)]
    [TestCase(0.5, 0.5)]
    [TestCase(0.9, 4.600000000000001)]
    [TestCase(1.0, 7.0)]
    public void QuantileIsTorchs(double q, double expected) =>
        Assert.That(AdapterCombination.Quantile([3.0, -1.0, 0.5, 2.0, -4.0, 7.0, 0.0], q),
            Is.EqualTo(expected).Within(1e-15));

    [Test]
    public void SvdClampBoundsBothFactorsByTheQuantileOfTheirEntries()
    {
        // The clamped ΔW depends on the signs the SVD gives its vectors (in PEFT too), so this checks the rule itself.
        var (_, free) = LoadAll();
        var (_, clamped) = LoadAll();
        free.AddWeightedAdapter(["combine-a", "combine-c"], [1.0, 1.0], "mix", CombinationType.Svd);
        clamped.AddWeightedAdapter(["combine-a", "combine-c"], [1.0, 1.0], "mix", CombinationType.Svd, svdClamp: 0.9);
        var layers = clamped.LoraLayers().Where(l => l.Value.Adapters.Contains("mix"))
            .ToDictionary(p => p.Key, p => p.Value);
        foreach (var (name, layer) in free.LoraLayers().Where(l => l.Value.Adapters.Contains("mix")))
        {
            float[] a = layer.LoraA["mix"].Weight.Data.ToArray(), b = layer.LoraB["mix"].Weight.Data.ToArray();
            double hi = AdapterCombination.Quantile(b.Concat(a).Select(v => (double)v).ToArray(), 0.9);
            float[] ca = layers[name].LoraA["mix"].Weight.Data.ToArray(),
                cb = layers[name].LoraB["mix"].Weight.Data.ToArray();
            Assert.That(ca, Is.EqualTo(a.Select(v => (float)Math.Clamp(v, -hi, hi))).Within(1e-6), name);
            Assert.That(cb, Is.EqualTo(b.Select(v => (float)Math.Clamp(v, -hi, hi))).Within(1e-6), name);
            Assert.That(ca.Concat(cb).Count(v => Math.Abs(v) >= hi - 1e-6), Is.GreaterThan(0), name);
        }
    }

    private static void Close(float[] got, float[] want, string what)
    {
        Assert.That(got.Length, Is.EqualTo(want.Length), what);
        for (int i = 0; i < got.Length; i++)
            Assert.That(got[i], Is.EqualTo(want[i]).Within(1e-5 * (1 + Math.Abs(want[i]))), $"{what}[{i}]");
    }
}
