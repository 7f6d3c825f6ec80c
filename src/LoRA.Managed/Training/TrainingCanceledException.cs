namespace LoRA.Managed.Training;

/// <summary>
/// Training stopped because its <see cref="CancellationToken"/> was cancelled (Ctrl+C, a signal, the host). Thrown
/// between two optimiser steps, after the checkpoint <see cref="TrainingArguments.SaveOnCancel"/> asks for, so
/// <see cref="CheckpointPath"/> names a folder that is on disk, or is null when none was written.
/// </summary>
public sealed class TrainingCanceledException : OperationCanceledException
{
    /// <summary>Creates the exception.</summary>
    public TrainingCanceledException(int globalStep, string? checkpointPath, CancellationToken token)
        : base(checkpointPath is null
            ? $"training cancelled after step {globalStep}; no checkpoint saved."
            : $"training cancelled after step {globalStep}; checkpoint saved to {checkpointPath}.", token)
    {
        GlobalStep = globalStep;
        CheckpointPath = checkpointPath;
    }

    /// <summary>The optimiser steps finished before stopping.</summary>
    public int GlobalStep { get; }

    /// <summary>The checkpoint of <see cref="GlobalStep"/> on disk, or null when none was written.</summary>
    public string? CheckpointPath { get; }
}
