namespace LoRA.Managed.Optim;

/// <summary>A learning-rate schedule: the rate to use at a given optimiser step (0-based).</summary>
public abstract class LrSchedule
{
    /// <summary>The learning rate for step <paramref name="step"/>.</summary>
    public abstract double At(int step);

    /// <summary>Sets the optimiser's rate for <paramref name="step"/>.</summary>
    public void Apply(Optimizer optimizer, int step)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        optimizer.LearningRate = At(step);
    }
}

/// <summary>A constant learning rate.</summary>
public sealed class ConstantSchedule(double learningRate) : LrSchedule
{
    /// <inheritdoc />
    public override double At(int step) => learningRate;
}
