namespace LoRA.Managed.Training;

/// <summary>
/// <see cref="Trainer.Train{TBatch}"/> stopped because its cancellation token was cancelled, between two optimiser
/// steps. <see cref="CheckpointPath"/> is the checkpoint that holds exactly step <see cref="Step"/> (written on
/// cancellation with <see cref="TrainingArguments.SaveOnCancel"/>, or earlier at that step), and null when there is none,
/// so a caller can say "saved to X" only when X is true.
/// </summary>
public sealed class TrainingCanceledException : OperationCanceledException
{
    /// <summary>Creates the exception for a run stopped after <paramref name="step"/> optimiser steps.</summary>
    public TrainingCanceledException(int step, string? checkpointPath, CancellationToken token)
        : base(checkpointPath is null
            ? $"Training was cancelled after step {step}; no checkpoint holds that step."
            : $"Training was cancelled after step {step}; the checkpoint {checkpointPath} holds it.", token)
    {
        Step = step;
        CheckpointPath = checkpointPath;
    }

    /// <summary>Optimiser steps finished when training stopped.</summary>
    public int Step { get; }

    /// <summary>The full path of the checkpoint folder of <see cref="Step"/>, or null when none was written.</summary>
    public string? CheckpointPath { get; }
}
