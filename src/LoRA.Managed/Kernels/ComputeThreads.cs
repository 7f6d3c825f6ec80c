namespace LoRA.Managed.Kernels;

/// <summary>
/// How many threads the kernels may use (default: every core). Results do not depend on it bit for bit only where a
/// kernel says so; the same seed and thread count always give the same bits. Set it for a scope with
/// <see cref="Use"/>, which puts the previous value back, rather than for the whole process.
/// </summary>
public static class ComputeThreads
{
    /// <summary>The largest thread count accepted (a guard against a typo allocating per-thread buffers for
    /// millions).</summary>
    public const int Limit = 1024;

    private static int _max = Math.Min(Environment.ProcessorCount, Limit);

    /// <summary>The threads kernels use now.</summary>
    public static int Max
    {
        get => _max;
        internal set => _max = Check(value);
    }

    /// <summary>
    /// Uses <paramref name="threads"/> kernel threads until the returned scope is disposed (null: leave the count as it
    /// is), then restores the previous count: <c>using (ComputeThreads.Use(2)) { ... }</c>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The count is not in 1..<see cref="Limit"/>.</exception>
    public static Scope Use(int? threads)
    {
        int previous = _max;
        if (threads is int n) _max = Check(n);
        return new Scope(previous);
    }

    private static int Check(int value) => value is >= 1 and <= Limit ? value
        : throw new ArgumentOutOfRangeException(nameof(value), value,
            $"threads: {value} must be between 1 and {Limit}.");

    /// <summary>Restores the thread count <see cref="Use"/> found.</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly int _previous;

        internal Scope(int previous) => _previous = previous;

        /// <summary>Puts the previous count back.</summary>
        public void Dispose()
        {
            if (_previous > 0) _max = _previous;
        }
    }
}
