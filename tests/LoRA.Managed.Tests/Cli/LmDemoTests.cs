using System.Text;
using LoRA.Managed.Recipes;
using LoRA.Managed.Models;
using LoRA.Managed.Cli;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using LoRA.Managed.Text;

namespace LoRA.Managed.Tests.Cli;

/// <summary><c>lora lm-demo</c>: its options in-process, and its pipeline on two tiny synthetic corpora (no
/// network).</summary>
public class LmDemoTests
{
    private static (int Code, string Out, string Err) Lora(params string[] args) => LoraCli.Run(args);

    [TestCase("--rank", "0", "--rank")]
    [TestCase("--dropout", "1.5", "--dropout")]
    [TestCase("--alpha", "-2", "--alpha")]
    [TestCase("--pretrain-steps", "x", "--pretrain-steps")]
    [TestCase("--finetune-epochs", "0", "--finetune-epochs")]
    [TestCase("--threads", "0", "--threads")]
    [TestCase("--no-such-option", "1", "--no-such-option")]
    public void BadOptionIsOneLineAndExitTwo(string option, string value, string named)
    {
        var run = Lora("lm-demo", option, value);
        Assert.That(run.Code, Is.EqualTo(2), run.Err);
        string[] lines = run.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), run.Err);
        Assert.That(lines[0], Does.StartWith("lora: ").And.Contain(named));
        Assert.That(run.Out, Is.Empty, "nothing ran");
    }

    [Test]
    public void MissingJsonDirectoryIsRefusedBeforeAnyWork()
    {
        var run = Lora("lm-demo", "--json", "/no/such/dir/lm.json");
        Assert.That(run.Code, Is.EqualTo(2));
        Assert.That(run.Err.Trim().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(run.Err, Does.Contain("--json"));
    }

    [Test]
    public void HelpListsTheOptions()
    {
        var run = Lora("lm-demo", "--help");
        Assert.That(run.Code, Is.EqualTo(0));
        foreach (string o in new[] { "--seed", "--pretrain-steps", "--finetune-epochs", "--rank", "--alpha",
            "--dropout", "--threads", "--out", "--json", "--data" })
            Assert.That(run.Out, Does.Contain(o));
    }

    // A: lower-case prose about cats; B: upper-case "WORD, n. definition" entries, a different distribution.
    private static string Corpus(bool dictionary, int entries, ulong seed)
    {
        var gen = new TorchGenerator(seed);
        string[] nouns = ["cat", "mat", "dog", "hat", "rat"], verbs = ["sat on", "saw", "ran to", "ate"];
        string[] words = ["ZEAL", "WIT", "TAX", "FAME"], glosses = ["a vice of", "the art of", "a cure for"];
        var sb = new StringBuilder();
        for (int i = 0; i < entries; i++)
            sb.Append(dictionary
                ? $"{words[gen.NextInt(words.Length)]}, n. {glosses[gen.NextInt(glosses.Length)]} " +
                $"{words[gen.NextInt(words.Length)].ToLowerInvariant()}.\n"
                : $"the {nouns[gen.NextInt(nouns.Length)]} {verbs[gen.NextInt(verbs.Length)]} the " +
                $"{nouns[gen.NextInt(nouns.Length)]}. ");
        return sb.ToString();
    }

    [Test]
    public void AdaptingToCorpusBLowersItsValidationLoss()
    {
        var settings = new TinyLmExperiment.Settings
        {
            Seed = 3, PretrainSteps = 60, FinetuneEpochs = 3, Rank = 4, Alpha = 8, Embed = 16, Layers = 1, Heads = 2,
            SeqLength = 16, BatchSize = 16, PretrainLearningRate = 1e-2, FinetuneLearningRate = 1e-2, SampleTokens = 20,
        };
        var output = new StringWriter();
        var context = new CliContext(output, new StringWriter(), interactive: false);
        var r = TinyLmExperiment.Run(Corpus(false, 400, 1), Corpus(true, 300, 2), settings, new CliObserver(context));

        Assert.That(r.ValLossBAdapted, Is.LessThan(r.ValLossBBase - 0.3), output.ToString());
        Assert.That(r.ValLossABase, Is.LessThan(r.ValLossBBase), "pre-training on A fits A better than B");
        Assert.That(r.TrainablePercent, Is.LessThan(20).And.GreaterThan(0));
        Assert.That(r.TrainableParams, Is.EqualTo(3 * 4 * (16 + 16)), "q/k/v in one block, r·(in+out) each");
        Assert.That(r.Summary, Does.StartWith("trainable params: 384 || all params: "));
        Assert.That(r.Finetune.EvalHistory, Has.Count.EqualTo(3));
        Assert.That(r.Finetune.RestoredBest, Is.True);
        Assert.That(r.ValLossBAdapted, Is.EqualTo(r.Finetune.BestMetric!.Value).Within(1e-9),
            "the restored best is what is measured");
        Assert.That(output.ToString(), Does.Contain("sample (base").And.Contain("sample (adapted"));
        // Step-bounded runs report steps of the whole run, not a made-up "epoch 1/1".
        Assert.That(output.ToString(), Does.Contain("pre-train A step 60/60: loss").And.Not.Contain("epoch 1/1"));
    }

    [Test]
    public void SamplingIsSeededAndGreedyIsDeterministic()
    {
        var tokenizer = CharTokenizer.FromText("abcdef ");
        var model = new GptModel(new GptConfig { VocabSize = tokenizer.VocabSize, BlockSize = 8, Layers = 1, Heads = 1,
            Embed = 8 }, new TorchGenerator(1));
        foreach (var p in model.Parameters()) new TorchGenerator(2).FillUniform(p.Data, -1f, 1f);
        string a = TextGenerator.Sample(model, tokenizer, "ab", 20, 1f, new TorchGenerator(5));
        string b = TextGenerator.Sample(model, tokenizer, "ab", 20, 1f, new TorchGenerator(5));
        string c = TextGenerator.Sample(model, tokenizer, "ab", 20, 1f, new TorchGenerator(6));
        Assert.That(a, Has.Length.EqualTo(22).And.StartWith("ab"));
        Assert.That(b, Is.EqualTo(a));
        Assert.That(c, Is.Not.EqualTo(a));
        string greedy1 = TextGenerator.Sample(model, tokenizer, "ab", 20, 0f, new TorchGenerator(5));
        string greedy2 = TextGenerator.Sample(model, tokenizer, "ab", 20, 0f, new TorchGenerator(9));
        Assert.That(greedy2, Is.EqualTo(greedy1));
        Assert.That(model.Training, Is.True);
        Assert.Throws<ArgumentException>(() => TextGenerator.Sample(model, tokenizer, "ab", 3, -1f,
            new TorchGenerator(0)));
    }
}
