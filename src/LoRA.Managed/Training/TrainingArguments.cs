using System.Globalization;

namespace LoRA.Managed.Training;

/// <summary>
/// What <see cref="Trainer"/> does, named after Hugging Face's <c>TrainingArguments</c> in .NET casing (each
/// member's doc gives the HF name). A record: <c>args with { LearningRate = 1e-4 }</c> copies it with a change.
/// Defaults are HF's unless noted. <see cref="Validate"/> names the first bad field.
/// </summary>
public sealed record TrainingArguments
{
    /// <summary><c>output_dir</c>: where <c>checkpoint-{step}</c> folders go; required when <see cref="SaveStrategy"/>
    /// is not No. Default null.</summary>
    public string? OutputDir { get; init; }

    /// <summary><c>per_device_train_batch_size</c>: samples per micro-batch. Default 8.</summary>
    public int PerDeviceTrainBatchSize { get; init; } = 8;

    /// <summary><c>per_device_eval_batch_size</c>: samples per evaluation batch. Default 8.</summary>
    public int PerDeviceEvalBatchSize { get; init; } = 8;

    /// <summary><c>num_train_epochs</c>: passes over the training batches (ignored when <see cref="MaxSteps"/> &gt; 0).
    /// Default 3.</summary>
    public int NumTrainEpochs { get; init; } = 3;

    /// <summary><c>max_steps</c>: when &gt; 0, the number of optimiser steps, overriding <see cref="NumTrainEpochs"/>;
    /// -1 for none. Default -1.</summary>
    public int MaxSteps { get; init; } = -1;

    /// <summary><c>learning_rate</c>: the peak rate of the schedule. Default 5e-5.</summary>
    public double LearningRate { get; init; } = 5e-5;

    /// <summary><c>weight_decay</c>: λ (AdamW: decoupled, skipping 1-D parameters; Adam: L2 on every gradient). Default
    /// 0.</summary>
    public double WeightDecay { get; init; }

    /// <summary><c>adam_beta1</c>. Default 0.9.</summary>
    public double AdamBeta1 { get; init; } = 0.9;

    /// <summary><c>adam_beta2</c>. Default 0.999.</summary>
    public double AdamBeta2 { get; init; } = 0.999;

    /// <summary><c>adam_epsilon</c>. Default 1e-8.</summary>
    public double AdamEpsilon { get; init; } = 1e-8;

    /// <summary><c>optim</c>: AdamW (HF's default) or plain Adam. Default AdamW.</summary>
    public OptimizerType Optimizer { get; init; } = OptimizerType.AdamW;

    /// <summary><c>lr_scheduler_type</c>. Default Linear.</summary>
    public LrSchedulerType LrSchedulerType { get; init; } = LrSchedulerType.Linear;

    /// <summary><c>warmup_steps</c>: steps of linear warm-up from 0; when &gt; 0 it wins over
    /// <see cref="WarmupRatio"/>. Default 0.</summary>
    public int WarmupSteps { get; init; }

    /// <summary><c>warmup_ratio</c>: warm-up as a fraction of all steps, rounded up (HF's <c>ceil(total·ratio)</c>), in
    /// [0, 1]. Default 0.</summary>
    public double WarmupRatio { get; init; }

    /// <summary><c>gradient_accumulation_steps</c>: micro-batches whose gradients add up before one optimiser step.
    /// Default 1.</summary>
    public int GradientAccumulationSteps { get; init; } = 1;

    /// <summary><c>max_grad_norm</c>: clip the global L2 norm of the gradients to this (as <c>clip_grad_norm_</c>);
    /// null or 0 for no clipping. Default 1.0.</summary>
    public double? MaxGradNorm { get; init; } = 1.0;

    /// <summary><c>eval_strategy</c>. Default No.</summary>
    public IntervalStrategy EvalStrategy { get; init; } = IntervalStrategy.No;

    /// <summary><c>eval_steps</c>: with <see cref="IntervalStrategy.Steps"/>, evaluate every this many steps. Default
    /// 500.</summary>
    public int EvalSteps { get; init; } = 500;

    /// <summary><c>save_strategy</c>. Default No (HF's is "steps"; here saving is opt-in so a run writes nothing
    /// unasked).</summary>
    public IntervalStrategy SaveStrategy { get; init; } = IntervalStrategy.No;

    /// <summary><c>save_steps</c>: with <see cref="IntervalStrategy.Steps"/>, save every this many steps. Default
    /// 500.</summary>
    public int SaveSteps { get; init; } = 500;

    /// <summary><c>save_total_limit</c>: keep at most this many checkpoints (the oldest go first, never the best one
    /// nor the latest); null keeps all.</summary>
    public int? SaveTotalLimit { get; init; }

    /// <summary>
    /// On cancellation (the token given to <see cref="Trainer.Train{TBatch}"/>), write a checkpoint of the last
    /// finished step into <see cref="OutputDir"/> before stopping, so Ctrl+C loses no work. Not in HF. Default false.
    /// </summary>
    public bool SaveOnCancel { get; init; }

    /// <summary>
    /// <c>resume_from_checkpoint</c>: a <c>checkpoint-{step}</c> folder to continue from (see
    /// <see cref="Trainer.Train{TBatch}"/>'s <c>resumeFrom</c>, which wins over this). Default null.
    /// </summary>
    public string? ResumeFromCheckpoint { get; init; }

    /// <summary>
    /// Settings outside these arguments that a resumed run must share with the checkpoint's (e.g. the CLI's pixel
    /// normalisation and digits): saved in every checkpoint and compared on resume, a difference refused naming the
    /// key. Not in HF. Default empty.
    /// </summary>
    public IReadOnlyDictionary<string, string> RunTags { get; init; } = new Dictionary<string, string>();

    /// <summary><c>load_best_model_at_end</c>: restore the best checkpoint's weights when training ends. Needs equal
    /// eval and save strategies. Default false.</summary>
    public bool LoadBestModelAtEnd { get; init; }

    /// <summary><c>metric_for_best_model</c>: a key of the evaluation metrics, e.g. <c>eval_loss</c> or
    /// <c>eval_accuracy</c>. Default <c>eval_loss</c>.</summary>
    public string MetricForBestModel { get; init; } = "eval_loss";

    /// <summary><c>greater_is_better</c>: null derives it as HF does: false for a metric ending in "loss", true
    /// otherwise.</summary>
    public bool? GreaterIsBetter { get; init; }

    /// <summary>
    /// <c>seed</c>: the seed the run's generators start from. The trainer itself draws nothing at random; callers build
    /// the model's and the batch order's <c>TorchGenerator</c> from it (as HF's <c>set_seed(args.seed)</c>). Default
    /// 42.
    /// </summary>
    public ulong Seed { get; init; } = 42;

    /// <summary><c>logging_steps</c>: every this many steps, the mean loss since the last log goes to
    /// <see cref="TrainerResult.LogHistory"/>. Default 500.</summary>
    public int LoggingSteps { get; init; } = 500;

    /// <summary>Whether a larger metric is better for <see cref="MetricForBestModel"/> (see
    /// <see cref="GreaterIsBetter"/>).</summary>
    public bool MetricGreaterIsBetter => GreaterIsBetter
        ?? !MetricForBestModel.EndsWith("loss", StringComparison.Ordinal);

    /// <summary>Throws unless every field is in range and the fields agree with one another.</summary>
    /// <exception cref="ArgumentException">The message names the field (HF name in parentheses) and its
    /// value.</exception>
    public void Validate()
    {
        Require(PerDeviceTrainBatchSize >= 1, nameof(PerDeviceTrainBatchSize), "per_device_train_batch_size",
            PerDeviceTrainBatchSize, "must be at least 1");
        Require(PerDeviceEvalBatchSize >= 1, nameof(PerDeviceEvalBatchSize), "per_device_eval_batch_size",
            PerDeviceEvalBatchSize, "must be at least 1");
        Require(MaxSteps > 0 || MaxSteps == -1, nameof(MaxSteps), "max_steps", MaxSteps,
            "must be positive or -1 (no cap)");
        Require(MaxSteps > 0 || NumTrainEpochs >= 1, nameof(NumTrainEpochs), "num_train_epochs", NumTrainEpochs,
            "must be at least 1 when max_steps is -1");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), "learning_rate", LearningRate,
            "must be a finite number > 0");
        Require(WeightDecay >= 0 && double.IsFinite(WeightDecay), nameof(WeightDecay), "weight_decay", WeightDecay,
            "must be a finite number ≥ 0");
        Require(AdamBeta1 >= 0 && AdamBeta1 < 1, nameof(AdamBeta1), "adam_beta1", AdamBeta1, "must be in [0, 1)");
        Require(AdamBeta2 >= 0 && AdamBeta2 < 1, nameof(AdamBeta2), "adam_beta2", AdamBeta2, "must be in [0, 1)");
        Require(AdamEpsilon >= 0 && double.IsFinite(AdamEpsilon), nameof(AdamEpsilon), "adam_epsilon", AdamEpsilon,
            "must be a finite number ≥ 0");
        Require(Enum.IsDefined(Optimizer), nameof(Optimizer), "optim", Optimizer, "is not a known optimiser");
        Require(Enum.IsDefined(LrSchedulerType), nameof(LrSchedulerType), "lr_scheduler_type", LrSchedulerType,
            "is not a known schedule");
        Require(WarmupSteps >= 0, nameof(WarmupSteps), "warmup_steps", WarmupSteps, "must be ≥ 0");
        Require(WarmupRatio >= 0 && WarmupRatio <= 1, nameof(WarmupRatio), "warmup_ratio", WarmupRatio,
            "must be in [0, 1]");
        Require(GradientAccumulationSteps >= 1, nameof(GradientAccumulationSteps), "gradient_accumulation_steps",
            GradientAccumulationSteps, "must be at least 1");
        Require(MaxGradNorm is null || (MaxGradNorm >= 0 && double.IsFinite(MaxGradNorm.Value)), nameof(MaxGradNorm),
            "max_grad_norm", MaxGradNorm, "must be a finite number ≥ 0 or null");
        Require(Enum.IsDefined(EvalStrategy), nameof(EvalStrategy), "eval_strategy", EvalStrategy,
            "is not a known strategy");
        Require(Enum.IsDefined(SaveStrategy), nameof(SaveStrategy), "save_strategy", SaveStrategy,
            "is not a known strategy");
        Require(EvalSteps >= 1, nameof(EvalSteps), "eval_steps", EvalSteps, "must be at least 1");
        Require(SaveSteps >= 1, nameof(SaveSteps), "save_steps", SaveSteps, "must be at least 1");
        Require(SaveTotalLimit is null || SaveTotalLimit >= 1, nameof(SaveTotalLimit), "save_total_limit",
            SaveTotalLimit, "must be at least 1 or null");
        Require(LoggingSteps >= 1, nameof(LoggingSteps), "logging_steps", LoggingSteps, "must be at least 1");
        Require(!string.IsNullOrWhiteSpace(MetricForBestModel), nameof(MetricForBestModel), "metric_for_best_model",
            MetricForBestModel, "must name a metric such as eval_loss");
        Require(!SaveOnCancel || !string.IsNullOrWhiteSpace(OutputDir), nameof(OutputDir), "output_dir", OutputDir,
            "is needed to save a checkpoint on cancellation (SaveOnCancel)");
        Require(ResumeFromCheckpoint is null || !string.IsNullOrWhiteSpace(ResumeFromCheckpoint),
            nameof(ResumeFromCheckpoint), "resume_from_checkpoint", ResumeFromCheckpoint,
            "must name a checkpoint folder or be null");
        Require(SaveStrategy == IntervalStrategy.No || !string.IsNullOrWhiteSpace(OutputDir), nameof(OutputDir),
            "output_dir", OutputDir, $"is needed to save checkpoints (save_strategy {SaveStrategy})");
        if (LoadBestModelAtEnd)
        {
            Require(EvalStrategy != IntervalStrategy.No, nameof(EvalStrategy), "eval_strategy", EvalStrategy,
                "must not be No with load_best_model_at_end");
            Require(SaveStrategy == EvalStrategy, nameof(SaveStrategy), "save_strategy", SaveStrategy,
                $"must equal eval_strategy ({EvalStrategy}) with load_best_model_at_end");
            Require(SaveStrategy != IntervalStrategy.Steps || SaveSteps % EvalSteps == 0, nameof(SaveSteps),
                "save_steps", SaveSteps, $"must be a multiple of eval_steps ({EvalSteps}) with load_best_model_at_end");
        }
    }

    /// <summary>HF's <c>get_warmup_steps</c>: <see cref="WarmupSteps"/> if set, else
    /// <c>ceil(total·WarmupRatio)</c>.</summary>
    public int WarmupStepsFor(int totalSteps) =>
        WarmupSteps > 0 ? Math.Min(WarmupSteps, totalSteps) : (int)Math.Ceiling(totalSteps * WarmupRatio);

    private static void Require(bool ok, string field, string hfName, object? value, string rule)
    {
        if (!ok)
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"TrainingArguments.{field} ({hfName}) {rule}, got {value?.ToString() ?? "null"}."));
    }
}
