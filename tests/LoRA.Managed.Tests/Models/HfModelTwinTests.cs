using LoRA.Managed.Autograd;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;

namespace LoRA.Managed.Tests.Models;

/// <summary>
/// The loaded fixture models against the PyTorch twins of tests/fixtures/hf/make_fixtures.py: logits of the training
/// forward, mean NLL of the cached scoring path (whole and 7-token windows), and greedy continuations id for id.
/// </summary>
public class HfModelTwinTests
{
    public static readonly string[] Fixtures = ["gpt2-tiny", "llama-gqa-tied", "qwen2-bias-bf16",
        "llama3-rope-sharded"];

    [TestCaseSource(nameof(Fixtures))]
    public void LogitsMatchTheTwin(string name)
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder(name));
        var e = HfFixtures.Expected(name);
        int[] ids = HfFixtures.Ints(e.GetProperty("ids"));
        float[] expected = HfFixtures.Floats(e.GetProperty("base").GetProperty("logits"));
        float[] actual;
        using (Tape.NoGrad()) actual = model.Forward(ids, 1, ids.Length).Data.ToArray();
        AssertClose(actual, expected, 2e-4, name);
    }

    [TestCaseSource(nameof(Fixtures))]
    public void CachedForwardGivesTheSameLogitsAsTheFullForward(string name)
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder(name));
        int[] ids = HfFixtures.Ints(HfFixtures.Expected(name).GetProperty("ids"));
        float[] full;
        using (Tape.NoGrad()) full = model.Forward(ids, 1, ids.Length).Data.ToArray();
        // Prefill 9 tokens, then one at a time: every row must match the full forward's.
        KvCache cache = model.NewCache(ids.Length);
        var rows = new List<float>();
        rows.AddRange(model.Head(model.ForwardCached(ids.AsSpan(0, 9), cache)).Data.ToArray());
        for (int i = 9; i < ids.Length; i++)
            rows.AddRange(model.Head(model.ForwardCached(ids.AsSpan(i, 1), cache)).Data.ToArray());
        AssertClose(rows.ToArray(), full, 1e-5, name);
    }

    [TestCaseSource(nameof(Fixtures))]
    public void MeanNllMatchesTheTwin(string name)
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder(name));
        var e = HfFixtures.Expected(name);
        int[] ids = HfFixtures.Ints(e.GetProperty("ids"));
        var b = e.GetProperty("base");
        ScoreResult whole = model.Score(ids), seven = model.Score(ids, 7);
        Assert.That(whole.Tokens, Is.EqualTo(b.GetProperty("tokens").GetInt64()));
        Assert.That(seven.Tokens, Is.EqualTo(b.GetProperty("tokens_context7").GetInt64()));
        double w = b.GetProperty("mean_nll").GetDouble(), s = b.GetProperty("mean_nll_context7").GetDouble();
        Assert.That(whole.MeanNll, Is.EqualTo(w).Within(2e-4 * w), "whole window");
        Assert.That(seven.MeanNll, Is.EqualTo(s).Within(2e-4 * s), "7-token windows");
        Assert.That(whole.Perplexity, Is.EqualTo(Math.Exp(whole.MeanNll)));
    }

    [TestCaseSource(nameof(Fixtures))]
    public void GreedyContinuationEqualsTheTwin(string name)
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder(name));
        var e = HfFixtures.Expected(name);
        int[] prompt = HfFixtures.Ints(e.GetProperty("prompt"));
        int[] expected = HfFixtures.Ints(e.GetProperty("base").GetProperty("greedy"));
        var streamed = new List<int>();
        int[] got = model.Generate(prompt, new GenerationSettings { MaxNewTokens = 16 }, streamed.Add);
        Assert.That(got, Is.EqualTo(expected));
        Assert.That(streamed, Is.EqualTo(expected));
    }

    internal static void AssertClose(float[] actual, float[] expected, double tol, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), what);
        double scale = expected.Max(v => Math.Abs((double)v));
        for (int i = 0; i < actual.Length; i++)
            Assert.That(actual[i], Is.EqualTo(expected[i]).Within(tol * Math.Max(1, scale)), $"{what}: element {i}");
    }
}
