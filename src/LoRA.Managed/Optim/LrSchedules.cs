namespace LoRA.Managed.Optim;

/// <summary>A learning-rate schedule: the rate to use at optimiser step <paramref name="step"/> (0-based).</summary>
public delegate double LrSchedule(int step);

/// <summary>
/// Hugging Face's schedules (<c>transformers.optimization</c>) as plain functions of the step. Each warm-up is linear
/// from 0 (<c>lr(s) = peak·s/w</c> for s &lt; w); the decays then reach 0 at the total step count.
/// </summary>
public static class LrSchedules
{
    /// <summary>A constant rate (<c>get_constant_schedule</c>).</summary>
    public static LrSchedule Constant(double learningRate) => _ => learningRate;

    /// <summary>Linear warm-up, then constant (<c>get_constant_schedule_with_warmup</c>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The warm-up is negative.</exception>
    public static LrSchedule WarmupConstant(double learningRate, int warmupSteps)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        return step => step < warmupSteps ? learningRate * step / warmupSteps : learningRate;
    }

    /// <summary>
    /// Linear warm-up, then linear decay to 0 at <paramref name="totalSteps"/>
    /// (<c>get_linear_schedule_with_warmup</c>): <c>lr(s) = peak·max(0, (T − s)/(T − w))</c>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Unless 0 ≤ warmup ≤ total and total &gt; 0.</exception>
    public static LrSchedule WarmupLinear(double peak, int warmupSteps, int totalSteps)
    {
        RequireSteps(warmupSteps, totalSteps);
        return step => step < warmupSteps
            ? peak * step / Math.Max(1, warmupSteps)
            : peak * Math.Max(0.0, (double)(totalSteps - step) / Math.Max(1, totalSteps - warmupSteps));
    }

    /// <summary>
    /// Linear warm-up, then cosine decay to 0 at <paramref name="totalSteps"/>
    /// (<c>get_cosine_schedule_with_warmup</c>): <c>lr(s) = peak·½(1 + cos(π·(s − w)/(T − w)))</c>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Unless 0 ≤ warmup ≤ total and total &gt; 0.</exception>
    public static LrSchedule WarmupCosine(double peak, int warmupSteps, int totalSteps)
    {
        RequireSteps(warmupSteps, totalSteps);
        return step =>
        {
            if (step < warmupSteps) return peak * step / Math.Max(1, warmupSteps);
            double progress = (double)(step - warmupSteps) / Math.Max(1, totalSteps - warmupSteps);
            return peak * Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * Math.Min(1.0, progress))));
        };
    }

    private static void RequireSteps(int warmupSteps, int totalSteps)
    {
        if (warmupSteps < 0 || totalSteps <= 0 || warmupSteps > totalSteps)
            throw new ArgumentOutOfRangeException(nameof(totalSteps),
                $"LrSchedules: need 0 ≤ warmup ({warmupSteps}) ≤ total ({totalSteps}) and total > 0.");
    }
}
