namespace LoRA.Managed.Optim;

/// <summary>
/// Linear warm-up, then cosine decay to 0 at <c>totalSteps</c>, as Hugging Face's
/// <c>get_cosine_schedule_with_warmup</c>: <c>lr(s) = peak·½(1 + cos(π·(s − w)/(T − w)))</c> after the warm-up.
/// </summary>
public sealed class WarmupCosineSchedule(double peak, int warmupSteps, int totalSteps) : WarmupDecaySchedule(peak, warmupSteps, totalSteps)
{
    /// <inheritdoc />
    protected override double Decay(int step)
    {
        double progress = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps);
        return Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * Math.Min(1.0, progress))));
    }
}
