namespace LoRA.Managed.Optim;

/// <summary>
/// The shape Hugging Face's schedules share: linear warm-up from 0 to <see cref="Peak"/> over
/// <see cref="WarmupSteps"/> (<c>lr(s) = peak·s/w</c> for s &lt; w), then a decay that reaches 0 at
/// <see cref="TotalSteps"/>, given by the subclass.
/// </summary>
public abstract class WarmupDecaySchedule : LrSchedule
{
    /// <summary>Checks and stores the three numbers.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Unless 0 ≤ warmup ≤ total and total &gt; 0.</exception>
    protected WarmupDecaySchedule(double peak, int warmupSteps, int totalSteps)
    {
        if (warmupSteps < 0 || totalSteps <= 0 || warmupSteps > totalSteps)
            throw new ArgumentOutOfRangeException(nameof(totalSteps), $"{GetType().Name}: need 0 ≤ warmup ({warmupSteps}) ≤ total ({totalSteps}) and total > 0.");
        Peak = peak; WarmupSteps = warmupSteps; TotalSteps = totalSteps;
    }

    /// <summary>The rate reached at the end of warm-up.</summary>
    public double Peak { get; }
    /// <summary>Steps of linear warm-up.</summary>
    public int WarmupSteps { get; }
    /// <summary>The step at which the rate reaches 0.</summary>
    public int TotalSteps { get; }

    /// <inheritdoc />
    public sealed override double At(int step) =>
        step < WarmupSteps ? Peak * step / Math.Max(1, WarmupSteps) : Peak * Decay(step);

    /// <summary>The factor applied to <see cref="Peak"/> at a step past the warm-up (1 at its end, 0 at <see cref="TotalSteps"/>).</summary>
    protected abstract double Decay(int step);
}
