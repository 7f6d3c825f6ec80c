namespace LoRA.Managed.Cli;

/// <summary>
/// The command was asked to stop (Ctrl+C, SIGTERM, SIGHUP) while it saved its result, and finished the save first;
/// <see cref="Program"/> prints the message and exits with <see cref="CheckpointOptions.InterruptedExitCode"/>.
/// </summary>
internal sealed class CommandInterruptedException(string message) : Exception(message);
