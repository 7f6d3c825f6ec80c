using LoRA.Managed.Autograd;
using LoRA.Managed.IO;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Recipes;
using LoRA.Managed.Tensors;
using LoRA.Managed.Tests.Autograd;
using LoRA.Managed.Text;
using LoRA.Managed.Text.Tokenizers;

namespace LoRA.Managed.Tests.Models;

/// <summary>
/// The language-model recipes (lm-eval, generate, lm-finetune) and their data path on the fixture models, with a
/// stand-in tokenizer (one id per character) until the Hugging Face tokenizer is wired in.
/// </summary>
public class LmRecipeTests
{
    /// <summary>Character c → id 3 + c mod 40; BOS 1 in front; EOS 2.</summary>
    private sealed class CharIds : ITextTokenizer
    {
        public int[] Encode(string text, bool addSpecialTokens = true) =>
            [.. addSpecialTokens ? new[] { 1 } : [], .. text.Select(c => 3 + c % 40)];

        public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
        {
            var sb = new System.Text.StringBuilder();
            foreach (int id in ids) if (!(skipSpecialTokens && id < 3)) sb.Append((char)('0' + id % 64));
            return sb.ToString();
        }

        public int? EosTokenId => 2;

        public ITextStreamDecoder CreateStreamDecoder(bool skipSpecialTokens = true) =>
            new Stream(this, skipSpecialTokens);

        private sealed class Stream(CharIds owner, bool skip) : ITextStreamDecoder
        {
            public string Append(int id) => owner.Decode([id], skip);
        }
    }

    [Test]
    public void MaskedCrossEntropyIsTheMeanOverKeptRowsAndHasTheRightGradient()
    {
        var g = new TorchGenerator(41);
        Tensor logits = GradCheck.Param(g, 5, 7);
        int[] labels = [3, -100, 0, -100, 6];
        GradCheck.Check(() => Functional.CrossEntropy(logits, labels), new[] { logits });
        var kept = new Tensor(3, 7);
        foreach (var (row, i) in new[] { 0, 2, 4 }.Select((r, i) => (r, i)))
            logits.Data.Slice(row * 7, 7).CopyTo(kept.Data.Slice(i * 7, 7));
        using (Tape.NoGrad())
            Assert.That(Functional.CrossEntropy(logits, labels).Item(),
                Is.EqualTo(Functional.CrossEntropy(kept, [3, 0, 6]).Item()).Within(1e-6));
        Assert.Throws<ArgumentException>(() => Functional.CrossEntropy(logits, [-100, -100, -100, -100, -100]));
        Assert.Throws<ArgumentException>(() => Functional.CrossEntropy(logits, [7, 0, 0, 0, 0]));
    }

    [Test]
    public void CompletionRowsSuperviseOnlyTheCompletion()
    {
        var rows = new CompletionExamples([([10, 11, 12, 13, 14], 3), ([20, 21, 22], 1)], maxLength: 8, padId: 0);
        Assert.That(rows.Time, Is.EqualTo(4));
        Assert.That(rows.Inputs(0).ToArray(), Is.EqualTo(new[] { 10, 11, 12, 13 }));
        Assert.That(rows.Targets(0).ToArray(), Is.EqualTo(new[] { -100, -100, 13, 14 }),
            "prompt 10 11 12: predict 13 and 14 only");
        Assert.That(rows.Inputs(1).ToArray(), Is.EqualTo(new[] { 20, 21, 0, 0 }));
        Assert.That(rows.Targets(1).ToArray(), Is.EqualTo(new[] { 21, 22, -100, -100 }));
        Assert.That(rows.SupervisedTokens, Is.EqualTo(4));
    }

    [Test]
    public void JsonlLinesThatAreNotRowsAreNamed()
    {
        using var dir = new HfFixtures.TempDir();
        string path = Path.Combine(dir.Path, "data.jsonl");
        File.WriteAllText(path, "{\"prompt\": \"a\", \"completion\": \"b\"}\n\n{\"prompt\": 3}\n");
        var ex = Assert.Throws<InvalidDataFormatException>(() => LmDataFile.Read(path, new CharIds(), 16))!;
        Assert.That(ex.Field, Is.EqualTo("line 3.prompt"));
        File.WriteAllText(path, "{\"question\": \"a\"}\n");
        Assert.That(Assert.Throws<InvalidDataFormatException>(() => LmDataFile.Read(path, new CharIds(), 16))!.Field,
            Is.EqualTo("line 1"));
        Assert.That(
            Assert.Throws<InvalidDataFormatException>(() => LmDataFile.Read(Path.Combine(dir.Path, "x.csv"),
                new CharIds(), 16))!.Field,
            Is.EqualTo("extension"));
    }

    [Test]
    public void EvaluationScoresTheTokenizedText()
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder("llama-gqa-tied"));
        const string text = "the quick brown fox jumps over the lazy dog, twice over";
        var r = LmEvaluation.Run(model, new CharIds(), text, context: 16);
        ScoreResult direct = model.Score(new CharIds().Encode(text), 16);
        Assert.That(r.Tokens, Is.EqualTo(direct.Tokens));
        Assert.That(r.MeanNll, Is.EqualTo(direct.MeanNll));
        Assert.That(r.Perplexity, Is.EqualTo(Math.Exp(r.MeanNll)).Within(1e-9));
        Assert.That(LmEvaluation.Run(model, new CharIds(), text).Context, Is.EqualTo(32),
            "default: the model's maximum positions");
    }

    [Test]
    public void GenerationStreamsTheTextOfTheNewIds()
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder("gpt2-tiny"));
        var pieces = new List<string>();
        var r = LmGenerationRecipe.Run(model, new CharIds(), "hello",
            new GenerationSettings { MaxNewTokens = 10, Temperature = 0.8f, Seed = 3 }, pieces.Add);
        Assert.That(r.PromptIds, Is.EqualTo(new CharIds().Encode("hello")));
        Assert.That(r.NewIds, Has.Length.InRange(1, 10));
        Assert.That(string.Concat(pieces), Is.EqualTo(r.Text));
        Assert.That(r.NewIds,
            Is.EqualTo(model.Generate(r.PromptIds,
                new GenerationSettings { MaxNewTokens = 10, Temperature = 0.8f, Seed = 3, EosTokenIds = [47] })));
    }

    [Test]
    public void GenerationKeepsTheSpaceBeforeTheFirstNewWord()
    {
        // SentencePiece's decoder strips the leading space of a text's first word; decoded alone, the first new token
        // "▁lived" lost its space and the command printed "wholived".
        CausalLm model = HfModel.Load(HfFixtures.Stories260K);
        var tokenizer = HfTokenizer.FromFolder(HfFixtures.Stories260K);
        var pieces = new List<string>();
        var r = LmGenerationRecipe.Run(model, tokenizer, "Pip was a small grey cat who",
            new GenerationSettings { MaxNewTokens = 4 },
            pieces.Add);
        Assert.That(tokenizer.TokenToString(r.NewIds[0]), Does.StartWith("\u2581"),
            "the first new token starts a word");
        Assert.That(r.Text, Does.StartWith(" "));
        Assert.That(string.Concat(pieces), Is.EqualTo(r.Text));
    }

    [TestCase("llama-gqa-tied", "q_proj,v_proj")]
    [TestCase("gpt2-tiny", "c_attn")]
    public void FinetuningOnPromptCompletionRowsLowersTheLossAndSavesAPeftAdapter(string fixture, string targets)
    {
        using var dir = new HfFixtures.TempDir();
        string data = Path.Combine(dir.Path, "train.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 20).Select(i =>
            $"{{\"prompt\": \"Q{i % 5}: \", \"completion\": \"{new string((char)('a' + i % 5), 4)}\"}}"));
        var o = new LmFinetuning.Options
        {
            ModelDir = HfFixtures.Folder(fixture), DataFile = data, OutDir = Path.Combine(dir.Path, "adapter"),
            Targets = targets.Split(','), Rank = 4, Alpha = 8, Steps = 30, BatchSize = 4, LearningRate = 3e-2,
            Context = 16, Seed = 1,
        };
        var r = LmFinetuning.Run(o, new CharIds());
        Assert.That(r.LastLoss, Is.LessThan(r.FirstLoss * 0.7), $"{r.FirstLoss} → {r.LastLoss}");
        Assert.That(r.Steps, Is.EqualTo(30));
        Assert.That(r.EvalLoss, Is.Not.Null, "20 rows: 2 held out");
        Assert.That(r.TokensPerSecond, Is.GreaterThan(0));
        Assert.That(r.TrainableParams, Is.GreaterThan(0).And.LessThan(r.TotalParams));
        var file = SafeTensors.Read(Path.Combine(o.OutDir, "adapter_model.safetensors"));
        Assert.That(file.Tensors.Keys,
            Has.All.StartWith("base_model.model.").And.EndWith(".lora_A.weight").Or.EndWith(".lora_B.weight"));
        CausalLm reloaded = HfModel.Load(o.ModelDir);
        var peft = PeftModel.FromPretrained(reloaded, o.OutDir);
        Assert.That(peft.Config.TaskType, Is.EqualTo("CAUSAL_LM"));
        Assert.That(peft.Config.BaseModelNameOrPath, Is.EqualTo(o.ModelDir));
    }

    [Test]
    public void CompletionFinetuningResumedFromACheckpointGivesTheSameAdapter()
    {
        using var dir = new HfFixtures.TempDir();
        string data = Path.Combine(dir.Path, "train.jsonl");
        File.WriteAllLines(data,
            Enumerable.Range(0, 24)
                .Select(i => $"{{\"prompt\": \"P{i % 7} \", \"completion\": " +
                    $"\"{new string((char)('a' + i % 3), 2 + i % 4)}\"}}"));
        LmFinetuning.Options Options(string name) => new()
        {
            ModelDir = HfFixtures.Folder("llama-gqa-tied"), DataFile = data, OutDir = Path.Combine(dir.Path, name),
            Targets = ["q_proj", "v_proj"], Rank = 2, Alpha = 4, Dropout = 0.1f, Steps = 8, BatchSize = 3,
            LearningRate = 1e-2, Context = 16, Seed = 9,
            CheckpointDir = Path.Combine(dir.Path, name + "-checkpoints"), SaveSteps = 4,
        };
        LmFinetuning.Run(Options("whole"), new CharIds());
        string checkpoint = Path.Combine(dir.Path, "whole-checkpoints", "checkpoint-4");
        Assert.That(Directory.Exists(checkpoint), checkpoint);
        LmFinetuning.Run(Options("resumed") with { ResumeFrom = checkpoint }, new CharIds());
        Assert.That(File.ReadAllBytes(Path.Combine(dir.Path, "resumed", "adapter_model.safetensors")),
            Is.EqualTo(File.ReadAllBytes(Path.Combine(dir.Path, "whole", "adapter_model.safetensors"))));
    }
}
