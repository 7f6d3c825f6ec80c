using System.Globalization;
using System.Runtime.InteropServices;

namespace LoRA.Managed.Cli;

/// <summary>
/// What Ctrl+C (SIGINT), SIGTERM (how containers and service managers stop a program) and SIGHUP (a closed terminal)
/// do during <c>train</c> and <c>finetune</c>: all three alike. While training, the first cancels the token, so the
/// trainer writes a checkpoint of the last finished step and the command exits with status 130; a second ends the
/// process at once. While the final file is being saved, the first is held back until the save is done (the result
/// of the whole run is in that file) and a second abandons the save: the process ends before the rename, so the
/// previous file is left as it was (<see cref="IO.AtomicFile"/>).
/// </summary>
internal sealed class InterruptSignals : IDisposable
{
    /// <summary>Test-only: milliseconds to wait before the final save, so a test can send a signal while it is under
    /// way.</summary>
    public const string SavePauseVariable = "LORA_MANAGED_TEST_SAVE_PAUSE_MS";

    private static readonly AsyncLocal<InterruptSignals?> CurrentListener = new();

    private readonly CancellationTokenSource _interrupt = new();
    private readonly List<PosixSignalRegistration> _registrations = [];
    private readonly TextWriter _error;
    private readonly InterruptSignals? _outer;
    private int _saving, _signalsWhileSaving;

    private InterruptSignals(TextWriter error)
    {
        _error = error;
        _outer = CurrentListener.Value;
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP })
        {
            try { _registrations.Add(PosixSignalRegistration.Create(signal, OnSignal)); }
            catch (PlatformNotSupportedException) { }   // e.g. SIGHUP where the platform has no such signal
        }
        CurrentListener.Value = this;
    }

    /// <summary>The listener of the command being run, if it installed one.</summary>
    public static InterruptSignals? Current => CurrentListener.Value;

    /// <summary>Starts listening for the command's lifetime (dispose to stop).</summary>
    public static InterruptSignals Listen(TextWriter error) => new(error);

    /// <summary>Cancelled by the first signal while training (or by <see cref="Interrupt"/>).</summary>
    public CancellationToken Token => _interrupt.Token;

    /// <summary>True once a signal (or <see cref="Interrupt"/>) asked the command to stop.</summary>
    public bool Requested => _interrupt.IsCancellationRequested;

    /// <summary>What a signal does while training, for the test-only stand-ins.</summary>
    public void Interrupt() => _interrupt.Cancel();

    /// <summary>
    /// Runs the final <paramref name="save"/> with the first signal held back (see the class summary). Returns true
    /// when the command was asked to stop before or during the save, so it can say so and exit with status 130 once
    /// saved.
    /// </summary>
    public bool Save(Action save)
    {
        ArgumentNullException.ThrowIfNull(save);
        Volatile.Write(ref _saving, 1);
        try
        {
            if (Environment.GetEnvironmentVariable(SavePauseVariable) is { } pause && int.TryParse(pause,
                NumberStyles.None, CultureInfo.InvariantCulture, out int ms))
            {
                _error.WriteLine($"lora: test: pausing {ms} ms before the final save");
                _error.Flush();
                Thread.Sleep(ms);
            }
            save();
        }
        finally
        {
            Volatile.Write(ref _saving, 0);
        }
        return Requested || Volatile.Read(ref _signalsWhileSaving) > 0;
    }

    private void OnSignal(PosixSignalContext context)
    {
        if (Volatile.Read(ref _saving) == 1)
        {
            if (Interlocked.Increment(ref _signalsWhileSaving) == 1)
            {
                context.Cancel = true;
                _error.WriteLine($"lora: {context.Signal} received while saving: finishing the save (send it again " +
                    "to abandon the save; the previous file stays).");
                _error.Flush();
            }
            return;   // a second one: not cancelled, so the process ends before the save's rename
        }
        // a second one while the trainer writes its checkpoint: end now
        if (_interrupt.IsCancellationRequested) return;
        context.Cancel = true;
        _interrupt.Cancel();
    }

    /// <summary>Stops listening; the default handling of the signals returns.</summary>
    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        CurrentListener.Value = _outer;
        _interrupt.Dispose();
    }
}
