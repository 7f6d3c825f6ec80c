namespace LoRA.Managed.Training;

/// <summary>One evaluation during training (an entry of HF's <c>log_history</c> with <c>eval_</c> metrics).</summary>
/// <param name="Step">The optimiser step after which it ran.</param>
/// <param name="Epoch">The epoch (1-based) it ran in.</param>
/// <param name="Metrics">The task's metrics, e.g. <c>eval_loss</c>.</param>
public sealed record EvalRecord(int Step, int Epoch, IReadOnlyDictionary<string, double> Metrics);

/// <summary>A training log line every <see cref="TrainingArguments.LoggingSteps"/> steps (HF's <c>{"loss",
/// "learning_rate", "epoch"}</c>).</summary>
/// <param name="Step">The optimiser step.</param>
/// <param name="Epoch">The epoch (1-based).</param>
/// <param name="Loss">Mean step loss since the previous log line.</param>
/// <param name="LearningRate">The rate of this step.</param>
public sealed record LogRecord(int Step, int Epoch, double Loss, double LearningRate);

/// <summary>What <see cref="Trainer.Train{TBatch}"/> did.</summary>
public sealed record TrainerResult
{
    /// <summary>Optimiser steps taken.</summary>
    public required int GlobalStep { get; init; }

    /// <summary>Epochs begun (the last may be cut short by <see cref="TrainingArguments.MaxSteps"/>).</summary>
    public required int Epochs { get; init; }

    /// <summary>The loss of every optimiser step (with accumulation: the sample-weighted mean over its
    /// micro-batches).</summary>
    public required IReadOnlyList<float> StepLosses { get; init; }

    /// <summary>The learning rate of every optimiser step.</summary>
    public required IReadOnlyList<double> LearningRates { get; init; }

    /// <summary>Every evaluation, in order.</summary>
    public required IReadOnlyList<EvalRecord> EvalHistory { get; init; }

    /// <summary>The training log lines.</summary>
    public required IReadOnlyList<LogRecord> LogHistory { get; init; }

    /// <summary>The checkpoint folders still on disk, oldest first.</summary>
    public required IReadOnlyList<string> Checkpoints { get; init; }

    /// <summary>The checkpoint with the best <see cref="TrainingArguments.MetricForBestModel"/> (HF's
    /// <c>best_model_checkpoint</c>), or null.</summary>
    public string? BestCheckpoint { get; init; }

    /// <summary>The best value of the metric seen at an evaluation, or null.</summary>
    public double? BestMetric { get; init; }

    /// <summary>The step of <see cref="BestMetric"/>, or null.</summary>
    public int? BestStep { get; init; }

    /// <summary>True when the best checkpoint's weights were loaded back at the end.</summary>
    public bool RestoredBest { get; init; }
}
