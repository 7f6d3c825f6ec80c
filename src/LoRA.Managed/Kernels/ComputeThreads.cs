namespace LoRA.Managed.Kernels;

/// <summary>
/// How many threads the kernels may use. Results never depend on it: each output element is
/// computed by one thread in one fixed order, so any thread count gives bitwise-identical results.
/// </summary>
public static class ComputeThreads
{
    private static int _max = Environment.ProcessorCount;

    /// <summary>The most threads a kernel splits its work over (default: the processor count).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is less than 1.</exception>
    public static int Max
    {
        get => _max;
        set
        {
            if (value < 1) throw new ArgumentOutOfRangeException(nameof(value), value, "ComputeThreads.Max must be at least 1.");
            _max = value;
        }
    }
}
