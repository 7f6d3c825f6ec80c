using LoRA.Managed.Training;

namespace LoRA.Managed.Recipes;

/// <summary>One training phase of a recipe, for a progress display.</summary>
/// <param name="Label">Its name, e.g. <c>base 0-7</c>.</param>
/// <param name="Epochs">Epochs in the phase (1 for a step-bounded phase).</param>
/// <param name="StepsPerEpoch">Optimiser steps per epoch (all the steps for a step-bounded phase).</param>
/// <param name="ByStep">The phase is bounded by a step count rather than by epochs.</param>
public sealed record TrainingPhase(string Label, int Epochs, int StepsPerEpoch, bool ByStep = false);

/// <summary>
/// What a recipe tells its caller while it runs: lines of text, and each training phase with a report after every
/// optimiser step. The default observes nothing; the CLI draws progress bars and prints the lines.
/// </summary>
public class RecipeObserver
{
    /// <summary>An observer that shows nothing.</summary>
    public static RecipeObserver Silent { get; } = new();

    /// <summary>A line worth showing (what is being trained, on what, a result).</summary>
    public virtual void Message(string line) { }

    /// <summary>A line about something that went wrong but did not stop the recipe (e.g. a damaged cache rebuilt);
    /// by default a <see cref="Message"/>.</summary>
    public virtual void Warning(string line) => Message(line);

    /// <summary>
    /// Runs one training phase: calls <paramref name="train"/> once, on this thread, with a progress sink (or null)
    /// that receives a report after every step.
    /// </summary>
    public virtual void RunPhase(TrainingPhase phase, Action<IProgress<TrainingProgress>?> train)
    {
        ArgumentNullException.ThrowIfNull(train);
        train(null);
    }
}
