using System.Diagnostics;
using System.Globalization;
using LoRA.Managed.Models;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using LoRA.Managed.Text;
using LoRA.Managed.Training;

namespace LoRA.Managed.Recipes;

/// <summary>
/// The language-model LoRA experiment behind <c>lora lm-demo</c> (the blog's step 3 in miniature), on any two texts:
/// pre-train a small GPT on corpus A, measure validation loss on A and B, wrap q/k/v with LoRA and fine-tune on B with
/// <see cref="Trainer"/> (AdamW, warm-up + cosine, weight decay, evaluation and a checkpoint each epoch, best
/// restored), then measure again.
/// </summary>
public static class TinyLmExperiment
{
    /// <summary>The experiment's knobs (defaults: the command's).</summary>
    public sealed record Settings
    {
#pragma warning disable CS1591 // each knob is named for what it sets
        public ulong Seed { get; init; }
        public int PretrainSteps { get; init; } = 1000;
        public int FinetuneEpochs { get; init; } = 3;
        public int Rank { get; init; } = 8;
        public double Alpha { get; init; } = 16;
        public float Dropout { get; init; } = 0.05f;
        public int Embed { get; init; } = 64;
        public int Layers { get; init; } = 2;
        public int Heads { get; init; } = 4;
        public int SeqLength { get; init; } = 64;
        public int BatchSize { get; init; } = 32;
        public double PretrainLearningRate { get; init; } = 3e-3;
        public double FinetuneLearningRate { get; init; } = 1e-2;
        public int MaxEvalWindows { get; init; }
        public int SampleTokens { get; init; } = 120;
        public string? Out { get; init; }
#pragma warning restore CS1591
    }

    /// <summary>What <see cref="Settings.Out"/> keeps: the base model and the adapter folder (with tokenizer.json and
    /// checkpoints/).</summary>
    public const string BaseModelFileName = "base_model.safetensors", AdapterDirectoryName = "adapter";

    /// <summary>The figures of one run.</summary>
#pragma warning disable CS1591
    public sealed record Result(double ValLossABase, double ValLossBBase, double ValLossBAdapted,
        double ValLossAAdapted,
        long TrainableParams, long AllParams, double TrainablePercent, double SecondsPretrain, double SecondsFinetune,
        string Summary, TrainerResult Finetune);
#pragma warning restore CS1591

    /// <summary>Prompts for the samples: one neutral, one in corpus B's entry style.</summary>
    public static readonly string[] Prompts = ["The ", "LOVE, n. "];

    /// <summary>Runs the experiment on corpus <paramref name="textA"/> then <paramref name="textB"/>.</summary>
    /// <exception cref="TrainingCanceledException">Cancelled between two steps.</exception>
    public static Result Run(string textA, string textB, Settings s, RecipeObserver? observer = null,
        CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(s);
        var o = observer ?? RecipeObserver.Silent;
        var tokenizer = CharTokenizer.FromCorpora([textA, textB]);
        var (trainA, valA) = Windows(tokenizer, textA, s.SeqLength, "A");
        var (trainB, valB) = Windows(tokenizer, textB, s.SeqLength, "B");
        o.Message(string.Create(CultureInfo.InvariantCulture,
            $"vocabulary {tokenizer.VocabSize} characters; windows of {s.SeqLength}: A {trainA.Count:N0} train / " +
            $"{valA.Count:N0} validation, B {trainB.Count:N0} / {valB.Count:N0}"));

        var generator = new TorchGenerator(s.Seed);
        var config = new GptConfig { VocabSize = tokenizer.VocabSize, BlockSize = s.SeqLength, Layers = s.Layers,
            Heads = s.Heads, Embed = s.Embed };
        var model = new GptModel(config, generator);

        // Pre-training on A: a fixed number of steps (not seconds), so a seed gives one model.
        var clock = Stopwatch.StartNew();
        var pretrainArgs = new TrainingArguments
        {
            PerDeviceTrainBatchSize = s.BatchSize, PerDeviceEvalBatchSize = s.BatchSize, MaxSteps = s.PretrainSteps,
            LearningRate = s.PretrainLearningRate, WeightDecay = 0.1, LrSchedulerType = LrSchedulerType.Cosine,
            WarmupRatio = 0.05,
            Seed = s.Seed, LoggingSteps = Math.Max(1, s.PretrainSteps / 5),
        };
        var pretrainTask = new LanguageModelTask(trainA, generator: generator);
        var pretrainer = new Trainer(model, pretrainArgs);
        o.Message(string.Create(CultureInfo.InvariantCulture,
            $"pre-training on A: {model.ParameterCount():N0} parameters, {s.PretrainSteps} steps of {s.BatchSize}, " +
            $"AdamW lr {s.PretrainLearningRate}, cosine"));
        TrainerResult pre = Train(o, "pre-train A", pretrainer, pretrainTask, s.PretrainSteps, cancellation);
        double secondsPretrain = clock.Elapsed.TotalSeconds;
        foreach (var log in pre.LogHistory)
            o.Message(FormattableString.Invariant($"  step {log.Step}: loss {log.Loss:F4}, lr {log.LearningRate:G3}"));

        double aBase = LanguageModelLoss.Mean(model, valA, s.BatchSize, s.MaxEvalWindows);
        double bBase = LanguageModelLoss.Mean(model, valB, s.BatchSize, s.MaxEvalWindows);
        o.Message(FormattableString.Invariant($"base model: validation loss A {aBase:F4}, B {bBase:F4} (nats/char)"));
        PrintSamples(o, "base", model, tokenizer, s);
        if (s.Out is not null)
        {
            Directory.CreateDirectory(s.Out);
            ModelFile.Save(model, Path.Combine(s.Out, BaseModelFileName));
            tokenizer.Save(Path.Combine(s.Out, "tokenizer.json"));
        }

        // LoRA on q/k/v, fine-tuned on B.
        var lora = new LoraConfig { Rank = s.Rank, Alpha = s.Alpha, Dropout = s.Dropout, Bias = LoraBias.None,
            TargetModules = ["q_proj", "k_proj", "v_proj"] };
        PeftModel peft = LoraModel.GetPeftModel(model, lora, generator);
        string summary = peft.TrainableParameterSummary();
        o.Message(summary);
        string checkpoints = s.Out is not null ? Path.Combine(s.Out, "checkpoints")
            : Directory.CreateTempSubdirectory("lora-lm-demo-").FullName;
        clock.Restart();
        TrainerResult fine;
        try
        {
            var finetuneArgs = new TrainingArguments
            {
                OutputDir = checkpoints, PerDeviceTrainBatchSize = s.BatchSize, PerDeviceEvalBatchSize = s.BatchSize,
                NumTrainEpochs = s.FinetuneEpochs, LearningRate = s.FinetuneLearningRate, WeightDecay = 0.1,
                LrSchedulerType = LrSchedulerType.Cosine, WarmupRatio = 0.1, EvalStrategy = IntervalStrategy.Epoch,
                SaveStrategy = IntervalStrategy.Epoch, SaveTotalLimit = 2, LoadBestModelAtEnd = true, Seed = s.Seed,
            };
            var finetuneTask = new LanguageModelTask(trainB, valB, generator, s.MaxEvalWindows);
            var finetuner = new Trainer(peft, finetuneArgs);
            o.Message(string.Create(CultureInfo.InvariantCulture,
                $"fine-tuning on B: LoRA r {s.Rank}, alpha {s.Alpha}, dropout {s.Dropout} on q/k/v; " +
                $"{s.FinetuneEpochs} epochs, AdamW lr {s.FinetuneLearningRate}, warm-up 10%, cosine, " +
                $"weight decay 0.1"));
            fine = Train(o, "LoRA on B", finetuner, finetuneTask,
                s.FinetuneEpochs * finetuneTask.BatchesPerEpoch(s.BatchSize), cancellation);
        }
        finally
        {
            if (s.Out is null) Directory.Delete(checkpoints, recursive: true);
        }
        double secondsFinetune = clock.Elapsed.TotalSeconds;
        foreach (var e in fine.EvalHistory)
            o.Message(string.Create(CultureInfo.InvariantCulture,
                $"  epoch {e.Epoch} (step {e.Step}): eval_loss {e.Metrics["eval_loss"]:F4}"));
        o.Message(string.Create(CultureInfo.InvariantCulture,
            $"  best: step {fine.BestStep}, eval_loss {fine.BestMetric:F4}{(fine.RestoredBest ? ", restored" : "")}"));

        double bAdapted = LanguageModelLoss.Mean(model, valB, s.BatchSize, s.MaxEvalWindows);
        double aAdapted = LanguageModelLoss.Mean(model, valA, s.BatchSize, s.MaxEvalWindows);
        PrintSamples(o, "adapted", model, tokenizer, s);
        if (s.Out is not null) peft.SaveAdapter(Path.Combine(s.Out, AdapterDirectoryName));

        long trainable = peft.TrainableParameterCount, all = peft.AllParameterCount;
        return new Result(aBase, bBase, bAdapted, aAdapted, trainable, all, 100.0 * trainable / all, secondsPretrain,
            secondsFinetune, summary, fine);
    }

    private static TrainerResult Train<TBatch>(RecipeObserver observer, string label, Trainer trainer,
        ITrainingTask<TBatch> task, int totalSteps,
        CancellationToken cancellation)
    {
        TrainerResult? result = null;
        observer.RunPhase(new TrainingPhase(label, 1, totalSteps, ByStep: true),
            progress => result = trainer.Train(task, progress, cancellation));
        return result!;
    }

    private static (PackedSequences Train, PackedSequences Validation) Windows(CharTokenizer tokenizer, string text,
        int length, string name)
    {
        var (train, validation) = TrainValidationSplit.Split(tokenizer.Encode(text), 0.1);
        PackedSequences t = SequencePacker.Pack(train, length), v = SequencePacker.Pack(validation, length);
        if (t.Count == 0 || v.Count == 0)
            throw new ArgumentException($"lm-demo: corpus {name} ({text.Length:N0} characters) is too short for " +
                $"windows of {length} in both its 90% training and 10% validation parts.");
        return (t, v);
    }

    private static void PrintSamples(RecipeObserver observer, string label, GptModel model, CharTokenizer tokenizer,
        Settings s)
    {
        if (s.SampleTokens == 0) return;
        // the same draws before and after, so the texts differ only by the model
        var generator = new TorchGenerator(s.Seed + 1);
        foreach (string prompt in Prompts)
        {
            string text = TextGenerator.Sample(model, tokenizer, prompt, s.SampleTokens, 0.8f, generator);
            observer.Message($"sample ({label}, T 0.8): {text.Replace("\n", " / ", StringComparison.Ordinal)}");
        }
    }
}
