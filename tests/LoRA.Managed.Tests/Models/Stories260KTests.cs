using LoRA.Managed.Autograd;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Tensors;

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

    // Score prefills each window through the cache in chunks of LmScoring.ChunkTokens (128), attention as products
    // from 16 new tokens, and sums each row's NLL with the training loss's kernel: against one uncached pass per
    // window and a log-softmax in double, over windows longer than a chunk, shorter, and cut by the context.
    [TestCase(300, 300), TestCase(300, 200), TestCase(129, 0), TestCase(20, 7)]
    public void ScoringInChunksEqualsOneUncachedPassPerWindow(int length, int context)
    {
        CausalLm model = Load();
        int vocab = model.Config.VocabSize, window = context == 0 ? model.Config.MaxContext : context;
        var g = new TorchGenerator(5);
        int[] ids = Enumerable.Range(0, length).Select(_ => g.NextInt(vocab)).ToArray();
        double total = 0;
        long count = 0;
        for (int start = 0; start < length; start += window)
        {
            int n = Math.Min(window, length - start);
            if (n < 2) continue;
            float[] logits;
            using (Tape.NoGrad()) logits = model.Forward(ids.AsSpan(start, n), 1, n).Data.ToArray();
            for (int r = 0; r + 1 < n; r++)
            {
                ReadOnlySpan<float> row = logits.AsSpan(r * vocab, vocab);
                double max = double.NegativeInfinity, sum = 0;
                foreach (float x in row) max = Math.Max(max, x);
                foreach (float x in row) sum += Math.Exp(x - max);
                total += Math.Log(sum) + max - row[ids[start + r + 1]];
                count++;
            }
        }
        ScoreResult scored = model.Score(ids, context);
        Assert.That(scored.Tokens, Is.EqualTo(count));
        Assert.That(scored.MeanNll, Is.EqualTo(total / count).Within(1e-5 * total / count));
    }

    [Test]
    public void ScoringNamesATargetOutsideTheVocabulary()
    {
        CausalLm model = Load();
        int vocab = model.Config.VocabSize;
        int[] ids = Enumerable.Range(0, 200).Select(i => i % vocab).ToArray();
        ids[LmScoring.ChunkTokens] = vocab + 3;   // the first chunk's last target, before its own chunk looks it up
        Assert.That(() => model.Score(ids, 200), Throws.ArgumentException.With.Message
            .Contains($"token id {vocab + 3} is outside the vocabulary 0..{vocab - 1}"));
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
