using System.Diagnostics;
using LoRA.Managed.Data;

namespace LoRA.Managed.Tests.Data;

public class ToolProcessTests
{
    [Test]
    public void ExitCodeAndBothStreamsAreReturned()
    {
        Assume.That(OperatingSystem.IsWindows(), Is.False, "uses /bin/sh");
        var run = ToolProcess.Run("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"], Path.GetTempPath(),
            TimeSpan.FromMinutes(1));
        Assert.That(run.TimedOut, Is.False);
        Assert.That(run.ExitCode, Is.EqualTo(3));
        Assert.That(run.StandardOutput, Is.EqualTo("out\n"));
        Assert.That(run.StandardError, Is.EqualTo("err\n"));
    }

    [Test]
    public void AMissingToolThrowsStartExceptionWithTheReason()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"lm-no-such-tool-{Guid.NewGuid():N}");
        var e = Assert.Throws<ToolProcess.StartException>(() => ToolProcess.Run(missing, [], Path.GetTempPath(),
            TimeSpan.FromMinutes(1)));
        Assert.That(e!.Reason, Is.Not.Null);
        Assert.That(e.InnerException, Is.SameAs(e.Reason));
    }

    [Test]
    public void AToolPastItsTimeLimitIsKilledAndReportedAsTimedOut()
    {
        Assume.That(OperatingSystem.IsWindows(), Is.False, "uses /bin/sh");
        var clock = Stopwatch.StartNew();
        var run = ToolProcess.Run("/bin/sh", ["-c", "sleep 30"], Path.GetTempPath(), TimeSpan.FromMilliseconds(300));
        Assert.That(run.TimedOut, Is.True);
        // Killed, not waited for: well under the 30 s the tool would take.
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(20)));
    }
}
