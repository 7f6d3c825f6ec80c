using System.Diagnostics;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Tensors;
using LoRA.Managed.Text;
using LoRA.Managed.Training;

namespace LoRA.Managed.Recipes;

/// <summary>
/// <c>lora lm-finetune</c>: LoRA on a Hugging Face causal LM, fine-tuned on a user's .txt (packed blocks) or .jsonl
/// (text rows, or prompt/completion rows with the loss on the completion only) through the one training loop
/// (<see cref="Trainer"/>: AdamW, warm-up then cosine, evaluation on a held-out tenth, checkpoints, resume, Ctrl+C
/// saves), then saved as a PEFT adapter folder.
/// </summary>
public static class LmFinetuning
{
    /// <summary>The options (defaults: the command's).</summary>
    public sealed record Options
    {
#pragma warning disable CS1591 // each option is named for the flag it mirrors
        public required string ModelDir { get; init; }
        /// <summary>How the frozen base's linear weights are stored (QLoRA with
        /// <see cref="Kernels.BaseDType.Nf4"/>).</summary>
        public Kernels.BaseDType BaseDType { get; init; } = Kernels.BaseDType.F32;
        /// <summary>Read and write the quantised-weight cache (<see cref="Models.Hf.HfLoadOptions.QuantizedCache"/>);
        /// its warnings go to the observer.</summary>
        public bool QuantizedCache { get; init; } = true;

        /// <summary>Storage of the frozen embeddings and LM head; null: <see
        /// cref="Models.Hf.HfModel.DefaultEmbeddingDType"/> of <see cref="BaseDType"/>.</summary>
        public Kernels.BaseDType? EmbeddingDType { get; init; }

        /// <summary>Recompute each block's activations in backward instead of keeping them (see
        /// <see cref="CausalLm.GradientCheckpointing"/>); LoRA dropout replays the same masks.</summary>
        public bool GradientCheckpointing { get; init; }
        public required string DataFile { get; init; }
        public required string OutDir { get; init; }
        public IReadOnlyList<string> Targets { get; init; } = ["q_proj", "v_proj"];
        public IReadOnlyList<string> Exclude { get; init; } = [];
        public IReadOnlyList<int> Layers { get; init; } = [];
        public int Rank { get; init; } = 8;
        public double Alpha { get; init; } = 16;
        public float Dropout { get; init; }
        public bool UseDora { get; init; }
        public int? Steps { get; init; }
        public int Epochs { get; init; } = 1;
        public double LearningRate { get; init; } = 2e-4;
        public int BatchSize { get; init; } = 4;
        public int GradAccum { get; init; } = 1;
        public int? Context { get; init; }
        public ulong Seed { get; init; } = 42;
        public double EvalFraction { get; init; } = 0.1;
        public string? CheckpointDir { get; init; }
        public int SaveSteps { get; init; }
        public string? ResumeFrom { get; init; }
#pragma warning restore CS1591
    }

    /// <summary>The JSON report's figures.</summary>
#pragma warning disable CS1591
    public sealed record Result(double FirstLoss, double LastLoss, long TrainableParams, long TotalParams,
        double TokensPerSecond,
        int Steps, double? EvalLoss, string Summary);
#pragma warning restore CS1591

    /// <summary>Runs the fine-tuning and writes the adapter to <see cref="Options.OutDir"/>.</summary>
    /// <exception cref="IO.InvalidDataFormatException">A model, adapter or data file is malformed (named).</exception>
    /// <exception cref="TrainingCanceledException">Cancelled between two steps (a checkpoint is saved when a folder was
    /// given).</exception>
    public static Result Run(Options o, ITextTokenizer tokenizer, RecipeObserver? observer = null,
        CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(tokenizer);
        var obs = observer ?? RecipeObserver.Silent;
        CausalLm model = Models.Hf.HfModel.Load(o.ModelDir, new Models.Hf.HfLoadOptions
        {
            BaseDType = o.BaseDType, EmbeddingDType = o.EmbeddingDType, QuantizedCache = o.QuantizedCache,
            Warning = obs.Warning,
        });
        model.GradientCheckpointing = o.GradientCheckpointing;
        int context = o.Context ?? Math.Min(model.Config.MaxContext, 512);
        if (context < 1 || context > model.Config.MaxContext)
            throw new ArgumentException($"lm-finetune: --context {context} must be between 1 and the model's maximum " +
                $"{model.Config.MaxContext}.");
        var (train, validation) = LmDataFile.Read(o.DataFile, tokenizer, context, o.EvalFraction);
        var generator = new TorchGenerator(o.Seed);
        var lora = new LoraConfig
        {
            Rank = o.Rank, Alpha = o.Alpha, Dropout = o.Dropout, UseDora = o.UseDora, TargetModules = o.Targets,
            ExcludeModules = o.Exclude, LayersToTransform = o.Layers,
            TaskType = "CAUSAL_LM", BaseModelNameOrPath = o.ModelDir,
        };
        PeftModel peft = LoraModel.GetPeftModel(model, lora, generator);
        model.Train();
        obs.Message(peft.TrainableParameterSummary());
        int time = train.Blocks?.MaxSeqLength ?? train.Rows!.Time;
        obs.Message($"{Path.GetFileName(o.DataFile)}: {train.Count:N0} training " +
            $"{(train.Blocks is null ? "rows" : "blocks")} of {time} positions" +
            (validation is null ? ", no evaluation split" : $", {validation.Count:N0} for evaluation"));

        var args = new TrainingArguments
        {
            OutputDir = o.CheckpointDir, PerDeviceTrainBatchSize = o.BatchSize, PerDeviceEvalBatchSize = o.BatchSize,
            NumTrainEpochs = o.Epochs, MaxSteps = o.Steps ?? -1, LearningRate = o.LearningRate, WeightDecay = 0,
            LrSchedulerType = LrSchedulerType.Cosine, WarmupRatio = 0.03, GradientAccumulationSteps = o.GradAccum,
            EvalStrategy = validation is null ? IntervalStrategy.No : IntervalStrategy.Epoch,
            SaveStrategy = o.CheckpointDir is null || o.SaveSteps <= 0 ? IntervalStrategy.No : IntervalStrategy.Steps,
            SaveSteps = Math.Max(1, o.SaveSteps), SaveOnCancel = o.CheckpointDir is not null,
            ResumeFromCheckpoint = o.ResumeFrom,
            Seed = o.Seed, LoggingSteps = 10,
        };
        var trainer = new Trainer(peft, args);
        var clock = Stopwatch.StartNew();
        TrainerResult result = train.Blocks is not null
            ? Fit(obs, trainer, new LanguageModelTask(train.Blocks, validation?.Blocks, generator), o, cancellation)
            : Fit(obs, trainer, new CompletionTask(train.Rows!, validation?.Rows, generator), o, cancellation);
        double seconds = clock.Elapsed.TotalSeconds;
        peft.SaveAdapter(o.OutDir);
        model.Eval();

        // Positions run through the model: every micro-batch is batch × time (the last of an epoch may be smaller).
        long positions = Math.Min((long)result.GlobalStep * o.GradAccum * o.BatchSize,
            (long)train.Count * result.Epochs) * time;
        double? evalLoss = result.EvalHistory.Count > 0 ? result.EvalHistory[^1].Metrics["eval_loss"] : null;
        var losses = result.StepLosses;
        return new Result(losses.Count > 0 ? losses[0] : double.NaN, losses.Count > 0 ? losses[^1] : double.NaN,
            peft.TrainableParameterCount, peft.AllParameterCount, positions / Math.Max(seconds, 1e-9),
            result.GlobalStep, evalLoss,
            peft.TrainableParameterSummary());
    }

    private static TrainerResult Fit<TBatch>(RecipeObserver obs, Trainer trainer, ITrainingTask<TBatch> task, Options o,
        CancellationToken cancellation)
    {
        int perEpoch = (task.BatchesPerEpoch(o.BatchSize) + o.GradAccum - 1) / o.GradAccum;
        bool byStep = o.Steps is not null;
        TrainerResult? result = null;
        obs.RunPhase(new TrainingPhase("LoRA", byStep ? 1 : o.Epochs, byStep ? o.Steps!.Value : perEpoch, byStep),
            progress => result = trainer.Train(task, progress, cancellation));
        return result!;
    }
}
