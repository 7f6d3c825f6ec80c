using LoRA.Managed.Recipes;
using LoRA.Managed.Training;

namespace LoRA.Managed.Cli;

/// <summary>Shows a recipe's lines on standard output and each training phase through
/// <see cref="TrainingView"/>.</summary>
internal sealed class CliObserver(CliContext context) : RecipeObserver
{
    public override void Message(string line) => context.Output.WriteLine(line);

    public override void Warning(string line) => context.Error.WriteLine(line);

    public override void RunPhase(TrainingPhase phase, Action<IProgress<TrainingProgress>?> train) =>
        TrainingView.Run(context, phase.Label, phase.Epochs, phase.StepsPerEpoch, train, phase.ByStep);
}
