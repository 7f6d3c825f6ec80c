namespace LoRA.Managed.Training;

/// <summary>
/// A report after one optimiser step of <see cref="Trainer"/>. A value type:
/// one is made every step, so reporting progress adds no allocation to the step.
/// </summary>
/// <param name="Epoch">The epoch, 1-based.</param>
/// <param name="Epochs">Epochs in the run.</param>
/// <param name="Step">The step within the epoch, 1-based.</param>
/// <param name="StepsPerEpoch">Steps per epoch.</param>
/// <param name="GlobalStep">Steps taken in this run, 1-based.</param>
/// <param name="Loss">This step's mean loss.</param>
/// <param name="EpochMeanLoss">Mean loss over the epoch's steps so far (sample-weighted).</param>
/// <param name="SamplesPerSecond">Training throughput of the epoch so far.</param>
/// <param name="LearningRate">The learning rate used for this step.</param>
public readonly record struct TrainingProgress(
    int Epoch, int Epochs, int Step, int StepsPerEpoch, int GlobalStep,
    float Loss, double EpochMeanLoss, double SamplesPerSecond, double LearningRate)
{
    /// <summary>True on the last step of an epoch.</summary>
    public bool EndOfEpoch => Step == StepsPerEpoch;
}
