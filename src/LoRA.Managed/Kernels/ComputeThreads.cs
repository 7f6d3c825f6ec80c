namespace LoRA.Managed.Kernels;

/// <summary>
/// How many threads the kernels may use. Results never depend on it: each output element is
/// computed by one thread in one fixed order, so any thread count gives bitwise-identical results.
/// </summary>
public static class ComputeThreads
{
    private static int _max = Math.Min(Environment.ProcessorCount, Limit);

    /// <summary>
    /// The largest <see cref="Max"/> accepted. Kernels size per-thread buffers by it, so a value such as 2³¹−1 would
    /// fail deep inside an allocation; 1,024 is beyond any machine this runs on and keeps those buffers small.
    /// </summary>
    public const int Limit = 1024;

    /// <summary>The most threads a kernel splits its work over (default: the processor count).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is less than 1 or more than <see cref="Limit"/>.</exception>
    public static int Max
    {
        get => _max;
        set
        {
            if (value < 1 || value > Limit) throw new ArgumentOutOfRangeException(nameof(value), value, $"ComputeThreads.Max must be from 1 to {Limit}.");
            _max = value;
        }
    }
}
