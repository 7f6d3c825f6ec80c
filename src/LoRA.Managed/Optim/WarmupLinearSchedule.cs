namespace LoRA.Managed.Optim;

/// <summary>
/// Linear warm-up, then linear decay to 0 at <c>totalSteps</c>, as Hugging Face's
/// <c>get_linear_schedule_with_warmup</c>: <c>lr(s) = peak·max(0, (T − s)/(T − w))</c> after the warm-up.
/// </summary>
public sealed class WarmupLinearSchedule(double peak, int warmupSteps, int totalSteps) : WarmupDecaySchedule(peak, warmupSteps, totalSteps)
{
    /// <inheritdoc />
    protected override double Decay(int step) =>
        Math.Max(0.0, (double)(TotalSteps - step) / Math.Max(1, TotalSteps - WarmupSteps));
}
