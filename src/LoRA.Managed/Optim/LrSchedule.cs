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

/// <summary>
/// Linear warm-up from 0 to the peak rate over <c>warmupSteps</c>, then cosine decay to 0 at
/// <c>totalSteps</c>, as Hugging Face's <c>get_cosine_schedule_with_warmup</c>:
/// <c>lr(s) = peak·s/w</c> for s &lt; w, else <c>peak·½(1 + cos(π·(s − w)/(T − w)))</c>.
/// </summary>
public sealed class WarmupCosineSchedule : LrSchedule
{
    /// <summary>Creates the schedule.</summary>
    public WarmupCosineSchedule(double peak, int warmupSteps, int totalSteps)
    {
        if (warmupSteps < 0 || totalSteps <= 0 || warmupSteps > totalSteps)
            throw new ArgumentOutOfRangeException(nameof(totalSteps), $"WarmupCosineSchedule: need 0 ≤ warmup ({warmupSteps}) ≤ total ({totalSteps}) and total > 0.");
        Peak = peak; WarmupSteps = warmupSteps; TotalSteps = totalSteps;
    }

    /// <summary>The rate reached at the end of warm-up.</summary>
    public double Peak { get; }
    /// <summary>Steps of linear warm-up.</summary>
    public int WarmupSteps { get; }
    /// <summary>The step at which the rate reaches 0.</summary>
    public int TotalSteps { get; }

    /// <inheritdoc />
    public override double At(int step)
    {
        if (step < WarmupSteps) return Peak * step / Math.Max(1, WarmupSteps);
        double progress = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps);
        return Peak * Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * Math.Min(1.0, progress))));
    }
}
