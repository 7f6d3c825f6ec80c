namespace LoRA.Managed.Optim;

/// <summary>
/// Linear warm-up from 0 to the rate over <c>warmupSteps</c>, then constant, as Hugging Face's
/// <c>get_constant_schedule_with_warmup</c>; with no warm-up it is <see cref="ConstantSchedule"/>.
/// </summary>
public sealed class WarmupConstantSchedule : LrSchedule
{
    /// <summary>Creates the schedule.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The warm-up is negative.</exception>
    public WarmupConstantSchedule(double learningRate, int warmupSteps)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        LearningRate = learningRate; WarmupSteps = warmupSteps;
    }

    /// <summary>The rate after warm-up.</summary>
    public double LearningRate { get; }
    /// <summary>Steps of linear warm-up.</summary>
    public int WarmupSteps { get; }

    /// <inheritdoc />
    public override double At(int step) => step < WarmupSteps ? LearningRate * step / WarmupSteps : LearningRate;
}
