using LoRA.Managed.Models;
using LoRA.Managed.Data;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;
using LoRA.Managed.Training;

namespace LoRA.Managed.Cli;

/// <summary>
/// The blog's two training phases. As in the blog's script, one generator (PyTorch's global one after
/// <c>torch.manual_seed(seed)</c>) draws the initial weights, then every epoch's order, then the adapter.
/// </summary>
/// <remarks>
/// With a checkpoint directory, Ctrl+C cancels training between two steps: the trainer writes a checkpoint of the
/// last finished step and <see cref="TrainingInterruptedException"/> carries the one line to print. A resumed run
/// rebuilds the model from the same seed (so the generator is where it was) before the checkpoint overwrites it.
/// </remarks>
internal static class BlogTraining
{
    /// <summary>Phase 1: the 784→512→256→10 MLP trained with Adam and cross-entropy on shuffled batches.</summary>
    public static (Mlp Model, ClassifierTrainer Trainer) Train(CliContext context, string label, MnistDataset train,
        int epochs, double learningRate, int batchSize, TorchGenerator generator, CheckpointSettings? checkpoints = null)
    {
        Mlp model = Mlp.Blog(generator);
        var trainer = Fit(context, label, model, model.Parameters(), train, epochs, learningRate, batchSize, generator, checkpoints ?? CheckpointSettings.None);
        return (model, trainer);
    }

    /// <summary>Phase 2: wrap <paramref name="model"/>'s targets with adapters and train only those with Adam.</summary>
    public static (PeftModel Model, ClassifierTrainer Trainer) FineTune(CliContext context, string label, Module model, LoraConfig config,
        MnistDataset train, int epochs, double learningRate, int batchSize, TorchGenerator generator, CheckpointSettings? checkpoints = null)
    {
        PeftModel peft = LoraModel.Wrap(model, config, generator);
        context.Output.WriteLine(peft.TrainableParameterSummary());
        var trainer = Fit(context, label, peft, peft.TrainableParameters(), train, epochs, learningRate, batchSize, generator, checkpoints ?? CheckpointSettings.None);
        return (peft, trainer);
    }

    private static ClassifierTrainer Fit(CliContext context, string label, Module model, IEnumerable<Parameter> parameters,
        MnistDataset train, int epochs, double learningRate, int batchSize, TorchGenerator generator, CheckpointSettings checkpoints)
    {
        var loader = new DataLoader(train, batchSize, shuffle: true, generator: generator);
        var optimizer = new Adam(parameters, learningRate);
        var trainer = new ClassifierTrainer();
        if (checkpoints.ResumeFrom is { } resume) context.Output.WriteLine($"resuming from {Path.GetFullPath(resume)}");
        // Ctrl+C, SIGTERM or SIGHUP cancel the token and keep the process alive so the trainer can save and we can exit
        // cleanly (InterruptSignals); a second one while that happens ends the process as usual. The command's listener
        // is used when it installed one (train, finetune: it also guards their final save), else one for this phase.
        InterruptSignals? own = InterruptSignals.Current is null ? InterruptSignals.Listen(context.Error) : null;
        InterruptSignals interrupt = InterruptSignals.Current!;
        // The test stand-in for Ctrl+C "after step N" when the run resumes at or past N: pressed before the first step.
        if (checkpoints is { StopAfterSteps: > 0, ResumeFrom: { } from } && TrainingPosition.Load(from).GlobalStep >= checkpoints.StopAfterSteps)
            interrupt.Interrupt();
        try
        {
            TrainingView.Run(context, label, epochs, loader.BatchCount, progress => trainer.Fit(model, optimizer, loader, epochs, schedule: null,
                checkpoints.StopAfterSteps > 0 ? new StopAfter(progress, checkpoints.StopAfterSteps, interrupt) : progress,
                interrupt.Token, checkpoints.Apply, checkpoints.ResumeFrom));
        }
        catch (TrainingCanceledException e) when (interrupt.Requested)
        {
            // Only what the trainer reports as written is named: every "saved to X" is true.
            string saved = e.CheckpointPath is { } path
                ? $"checkpoint saved to {path}; continue with --resume and the same options"
                : checkpoints.Directory is null
                    ? "no checkpoint saved (give --checkpoint-dir or --out to keep one)"
                    : "no checkpoint saved (no step had finished)";
            throw new TrainingInterruptedException($"interrupted after step {e.Step}: {saved}.", e);
        }
        finally
        {
            own?.Dispose();
        }
        return trainer;
    }

    // The test-only stand-in for Ctrl+C: cancel right after step N, as the key press would.
    private sealed class StopAfter(IProgress<TrainingProgress> inner, int steps, InterruptSignals interrupt) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            inner.Report(value);
            if (value.GlobalStep >= steps) interrupt.Interrupt();
        }
    }
}
