using Spectre.Console;

namespace LoRA.Managed.Cli;

/// <summary>
/// Where a command writes: plain writers for stdout/stderr and a Spectre console over stdout. When the
/// output is not an interactive terminal (redirected, a test's StringWriter, CI), the console emits no
/// ANSI codes and progress is printed as one plain line per epoch.
/// </summary>
internal sealed class CliContext
{
    public CliContext(TextWriter output, TextWriter error, bool interactive, CancellationToken cancellation = default)
    {
        Cancellation = cancellation;
        Output = output;
        Error = error;
        Interactive = interactive;
        Console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = interactive ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = interactive ? InteractionSupport.Yes : InteractionSupport.No,
        });
        if (!interactive) Console.Profile.Width = 120; // a redirected writer has no width; keep tables on one line
    }

    /// <summary>Cancelled by Ctrl+C, SIGTERM or SIGHUP (or by a test): training stops between two steps.</summary>
    public CancellationToken Cancellation { get; }

    /// <summary>
    /// Runs a command's final save with the first Ctrl+C, SIGTERM or SIGHUP held back until it is done (when the
    /// process listens for them, <see cref="InterruptSignals"/>); returns true when the command was asked to stop
    /// meanwhile.
    /// </summary>
    public bool GuardedSave(Action save)
    {
        ArgumentNullException.ThrowIfNull(save);
        if (InterruptSignals.Current is { } signals) return signals.Save(save);
        save();
        return Cancellation.IsCancellationRequested;
    }

    /// <summary>Plain standard output.</summary>
    public TextWriter Output { get; }

    /// <summary>Plain standard error.</summary>
    public TextWriter Error { get; }

    /// <summary>Spectre console over <see cref="Output"/>.</summary>
    public IAnsiConsole Console { get; }

    /// <summary>True when live progress bars and colours may be drawn.</summary>
    public bool Interactive { get; }

    /// <summary>Table borders: box drawing on a terminal, ASCII in logs.</summary>
    public TableBorder Border => Interactive ? TableBorder.Rounded : TableBorder.Ascii;

    /// <summary>
    /// Interactive only when writing to the real console, stdout is not redirected, and not under CI.
    /// </summary>
    public static bool DetectInteractive(TextWriter output) =>
        ReferenceEquals(output, System.Console.Out)
        && !System.Console.IsOutputRedirected
        && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"))
        && AnsiConsole.Profile.Capabilities.Interactive;
}
