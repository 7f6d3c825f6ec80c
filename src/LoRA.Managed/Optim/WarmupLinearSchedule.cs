namespace LoRA.Managed.Optim;

/// <summary>
/// Linear warm-up from 0 to the peak over <c>warmupSteps</c>, then linear decay to 0 at <c>totalSteps</c>, as Hugging
/// Face's <c>get_linear_schedule_with_warmup</c>: <c>lr(s) = peak·s/w</c> for s &lt; w, else
/// <c>peak·max(0, (T − s)/(T − w))</c>.
/// </summary>
public sealed class WarmupLinearSchedule : LrSchedule
{
    /// <summary>Creates the schedule.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Unless 0 ≤ warmup ≤ total and total &gt; 0.</exception>
    public WarmupLinearSchedule(double peak, int warmupSteps, int totalSteps)
    {
        if (warmupSteps < 0 || totalSteps <= 0 || warmupSteps > totalSteps)
            throw new ArgumentOutOfRangeException(nameof(totalSteps), $"WarmupLinearSchedule: need 0 ≤ warmup ({warmupSteps}) ≤ total ({totalSteps}) and total > 0.");
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
        return Peak * Math.Max(0.0, (double)(TotalSteps - step) / Math.Max(1, TotalSteps - WarmupSteps));
    }
}
