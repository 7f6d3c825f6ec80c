using LoRA.Managed.Autograd;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;

namespace LoRA.Managed.Tests.Models;

/// <summary>
/// The real pretrained stories260K (../shared/models/stories260K, a Llama with GQA and tied embeddings) against the
/// PyTorch twin's numbers in tests/fixtures/hf/stories260K.json: logits, windowed NLL, and the greedy story from
/// "&lt;s&gt; Once upon a time" (ids 1 403 407 261 378), which reads ", there was a little girl named Lily. …".
/// </summary>
public class Stories260KTests
{
    private static CausalLm Load() => HfModel.Load(HfFixtures.Stories260K);

    [Test]
    public void ConfigAndEos()
    {
        CausalLm model = Load();
        Assert.That(model, Is.InstanceOf<LlamaForCausalLm>());
        Assert.That(((LlamaForCausalLm)model).LmHead, Is.Null, "tied head");
        Assert.That(model.Config.KvHeads, Is.EqualTo(4));
        Assert.That(model.EosTokenIds, Is.EqualTo(new[] { 2 }));
        Assert.That(model.ParameterCount(), Is.EqualTo(260_032));
    }

    [Test]
    public void LogitsMatchTheTwin()
    {
        var e = HfFixtures.Json("stories260K.json");
        int[] ids = HfFixtures.Ints(e.GetProperty("ids"));
        int[] rows = HfFixtures.Ints(e.GetProperty("logit_rows"));
        CausalLm model = Load();
        float[] logits;
        using (Tape.NoGrad()) logits = model.Forward(ids, 1, ids.Length).Data.ToArray();
        int v = model.Config.VocabSize, i = 0;
        foreach (var row in e.GetProperty("logits").EnumerateArray())
        {
            float[] expected = HfFixtures.Floats(row);
            HfModelTwinTests.AssertClose(logits.AsSpan(rows[i] * v, v).ToArray(), expected, 2e-5, $"row {rows[i]}");
            i++;
        }
    }

    [Test]
    public void MeanNllMatchesTheTwin()
    {
        var e = HfFixtures.Json("stories260K.json");
        int[] ids = HfFixtures.Ints(e.GetProperty("ids"));
        CausalLm model = Load();
        double whole = e.GetProperty("mean_nll").GetDouble(), eight = e.GetProperty("mean_nll_context8").GetDouble();
        Assert.That(model.Score(ids).MeanNll, Is.EqualTo(whole).Within(2e-4 * whole));
        Assert.That(model.Score(ids, 8).MeanNll, Is.EqualTo(eight).Within(2e-4 * eight));
    }

    [Test]
    public void GreedyStoryEqualsTheTwinIdForId()
    {
        var e = HfFixtures.Json("stories260K.json");
        int[] prompt = HfFixtures.Ints(e.GetProperty("prompt"));
        int[] expected = HfFixtures.Ints(e.GetProperty("greedy"));
        int[] got = Load().Generate(prompt, new GenerationSettings { MaxNewTokens = expected.Length });
        Assert.That(got, Is.EqualTo(expected));
        // ids 395 317 are "▁named ▁Lily" in the folder's tokenizer.json.
        Assert.That(string.Join(" ", got), Does.Contain("395 317"));
    }

    [Test]
    public void SamplingIsReproducibleForASeedAndStopsAtEos()
    {
        CausalLm model = Load();
        int[] prompt = [1, 403, 407, 261, 378];
        var settings = new GenerationSettings { MaxNewTokens = 60, Temperature = 0.9f, TopK = 40, TopP = 0.95f,
            Seed = 7 };
        int[] a = model.Generate(prompt, settings), b = model.Generate(prompt, settings);
        Assert.That(a, Is.EqualTo(b));
        Assert.That(model.Generate(prompt, settings with { Seed = 8 }), Is.Not.EqualTo(a));
        int eosAt = Array.IndexOf(a, 2);
        Assert.That(eosAt < 0 || eosAt == a.Length - 1, "nothing is generated after EOS");
    }
}
