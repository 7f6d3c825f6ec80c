using System.Diagnostics;
using System.Text;

namespace LoRA.Managed.Tests.Reliability;

/// <summary>
/// The <c>lora</c> command as a child process (<c>dotnet lora.dll</c> from the test's output folder), for what only a
/// real process shows: signals. Output lines are collected as they arrive so a test can wait for one and then signal.
/// </summary>
internal sealed class LoraProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _out = new(), _err = new();
    private readonly object _gate = new();

    public LoraProcess(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "lora.dll");
        string host = Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? Environment.ProcessPath!
            : "dotnet";
        var info = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true,
            UseShellExecute = false };
        if (SignalsIgnored())
        {
            // Started under nohup or as a background job, this process ignores SIGHUP or SIGINT and a child would
            // inherit that, so the signal tests would test nothing. GNU env restores the default first (and execs,
            // so the process id stays the child's).
            info.FileName = "env";
            info.ArgumentList.Add("--default-signal=HUP,INT,TERM");
            info.ArgumentList.Add(host);
        }
        info.ArgumentList.Add(dll);
        foreach (string a in args) info.ArgumentList.Add(a);
        info.Environment["CI"] = "1";   // plain output, no live progress
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) info.Environment[k] = v;
        _process = new Process { StartInfo = info };
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_gate) _out.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_gate) _err.AppendLine(e.Data); };
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    // Whether this process ignores SIGHUP, SIGINT or SIGTERM (bits 0, 1 and 14 of /proc's SigIgn mask).
    private static bool SignalsIgnored()
    {
        if (!OperatingSystem.IsLinux()) return false;
        string? line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:",
            StringComparison.Ordinal));
        return line is not null && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & 0x4003UL) != 0;
    }

    public string Out { get { lock (_gate) return _out.ToString(); } }

    public string Err { get { lock (_gate) return _err.ToString(); } }

    /// <summary>Waits until stdout or stderr contains <paramref name="text"/>; fails the test on timeout or
    /// exit.</summary>
    public void WaitFor(string text, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!Out.Contains(text, StringComparison.Ordinal) && !Err.Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited && !Out.Contains(text, StringComparison.Ordinal) && !Err.Contains(text,
                StringComparison.Ordinal))
                Assert.Fail($"lora exited ({_process.ExitCode}) before printing '{text}'.\nstdout: {Out}\nstderr: " +
                    $"{Err}");
            if (clock.Elapsed > timeout) Assert.Fail($"no '{text}' within {timeout.TotalSeconds} s.\nstdout: " +
                $"{Out}\nstderr: {Err}");
            Thread.Sleep(20);
        }
    }

    /// <summary>Sends a signal by name (INT, TERM, HUP) with kill(1).</summary>
    public void Signal(string name)
    {
        using var kill = Process.Start("kill", [$"-{name}",
            _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
    }

    /// <summary>Waits for the exit and returns the status (128 + signal when a signal ended it).</summary>
    public int Exit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            _process.Kill(entireProcessTree: true);
            Assert.Fail($"lora did not exit within {timeout.TotalSeconds} s.\nstdout: {Out}\nstderr: {Err}");
        }
        _process.WaitForExit();   // drains the output events
        return _process.ExitCode;
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }
}
