using System.Diagnostics;

namespace LoRA.Managed.Tests.Autograd;

/// <summary>
/// The bytes a training step allocates on this thread once the runtime has finished compiling it: the measurement
/// behind every "a steady-state step allocates nothing" test.
/// </summary>
/// <remarks>
/// .NET first runs a method as quick, unoptimised code and swaps in optimised code in the background once it has been
/// called 30 times and no other method has been compiled for a while; in the full suite, with thousands of methods
/// compiled around it, that can be many steps later than the warm-up. One run of the suite once measured 4,256 bytes
/// over a window of four steps that no rerun reproduced. So a window that allocates is measured again, for at most
/// <c>budgetSeconds</c>, until one allocates nothing; then a confirming window must allocate nothing too, as long as
/// every step run so far and at least two windows: a buffer that grows by at most twice its size (a list that
/// leaks an entry per step) grows again within that many steps, so a growing leak is not let through by a quiet
/// stretch between two of its growths. A step that allocates in steady state fails.
/// </remarks>
internal static class SteadyState
{
    /// <summary>
    /// Runs <paramref name="step"/> <paramref name="warmUp"/> times, then returns the bytes allocated by the
    /// confirming window after the first clean window of <paramref name="window"/> steps (0 when both are clean), or
    /// the last window's bytes when none is clean within <paramref name="budgetSeconds"/>.
    /// </summary>
    public static long AllocatedBytes(Action step, int window, int warmUp = 3, double budgetSeconds = 20)
    {
        for (int i = 0; i < warmUp; i++) step();
        long deadline = Stopwatch.GetTimestamp() + (long)(budgetSeconds * Stopwatch.Frequency);
        for (int windows = 1; ; windows++)
        {
            long bytes = Window(step, window);
            if (bytes == 0)
            {
                int steps = Math.Max(2 * window, warmUp + windows * window);
                long confirm = Window(step, steps);
                if (windows > 1 || confirm != 0)
                    TestContext.Out.WriteLine($"clean after {windows} windows of {window} steps; the following " +
                        $"{steps} steps allocated {confirm} bytes");
                return confirm;
            }
            bool last = Stopwatch.GetTimestamp() > deadline;
            if (windows <= 3 || last)
                TestContext.Out.WriteLine($"window {windows} of {window} steps allocated {bytes} bytes");
            if (last) return bytes;
        }
    }

    private static long Window(Action step, int steps)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < steps; i++) step();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }
}
