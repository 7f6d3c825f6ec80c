using System.Diagnostics;

namespace LoRA.Managed.Tests.Reliability;

/// <summary>Makes the non-regular files the reliability tests feed the loaders (Linux: a FIFO through
/// mkfifo).</summary>
internal static class SpecialFiles
{
    /// <summary>Creates a FIFO at <paramref name="path"/>, or ignores the test where mkfifo does not exist.</summary>
    public static string Fifo(string path)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) Assert.Ignore("FIFOs are a Unix feature.");
        using var p = Process.Start(new ProcessStartInfo("mkfifo", [path]) { RedirectStandardError = true })!;
        p.WaitForExit();
        Assert.That(p.ExitCode, Is.EqualTo(0), p.StandardError.ReadToEnd());
        return path;
    }

    /// <summary>
    /// Runs <paramref name="action"/> with a time limit: a loader that blocks on a FIFO fails the test instead of
    /// hanging it (the FIFO is then opened for writing once, which releases the blocked open, and closed).
    /// </summary>
    public static Exception? Within(TimeSpan limit, Action action, string? fifoToRelease = null)
    {
        var task = Task.Run(() =>
        {
            try { action(); return null; }
            catch (Exception e) { return e; }
        });
        if (task.Wait(limit)) return task.Result;
        if (fifoToRelease is not null)
            using (new FileStream(fifoToRelease, FileMode.Open, FileAccess.Write)) { }
        Assert.Fail($"the call did not return within {limit.TotalSeconds} s (it blocked)");
        return null;
    }
}
