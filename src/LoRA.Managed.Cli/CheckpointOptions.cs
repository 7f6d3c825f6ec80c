using System.CommandLine;
using LoRA.Managed.Training;

namespace LoRA.Managed.Cli;

/// <summary>
/// The checkpoint options of <c>train</c> and <c>finetune</c>: <c>--checkpoint-every</c>, <c>--checkpoint-dir</c>,
/// <c>--resume</c>, and the hidden, test-only <c>--test-stop-after-steps</c>.
/// </summary>
internal sealed class CheckpointOptions
{
    /// <summary>Exit status when training was interrupted (Ctrl+C): 128 + SIGINT, as shells report it.</summary>
    public const int InterruptedExitCode = 130;

    public Option<int> Every { get; } = CommonOptions.Int("--checkpoint-every", 0, 0,
        "Write a resumable checkpoint (weights, optimiser, data order, losses) every N optimiser steps; 0: only when interrupted with Ctrl+C.");

    public Option<string?> Directory { get; } = CommonOptions.NonEmptyPath(new Option<string?>("--checkpoint-dir")
    {
        Description = "Where checkpoint-{step} folders go (default: next to --out, as <out>.checkpoints).", HelpName = "DIR",
    });

    public Option<int> SaveTotalLimit { get; } = CommonOptions.Int("--save-total-limit", 0, 0,
        "Keep at most N checkpoint folders, deleting the oldest (never the newest); 0: keep all.");

    public Option<string?> Resume { get; } = CommonOptions.NonEmptyPath(new Option<string?>("--resume")
    {
        Description = "Continue from a checkpoint-{step} folder, or from the newest complete one in a checkpoint directory; give the same options (seed, digits, epochs, batch size, lr, normalisation) as the interrupted run (a difference is refused). The result is bit for bit that of an uninterrupted run.",
        HelpName = "DIR",
    });

    /// <summary>
    /// Test-only: behaves as if Ctrl+C were pressed right after step N (the in-process CLI tests cannot send SIGINT).
    /// Hidden from help; not part of the command's contract.
    /// </summary>
    public Option<int> StopAfterSteps { get; } = new("--test-stop-after-steps") { Hidden = true, DefaultValueFactory = _ => 0 };

    public IEnumerable<Option> All => [Every, Directory, SaveTotalLimit, Resume, StopAfterSteps];

    /// <summary>The values of one invocation, with the directory defaulted from <paramref name="outPath"/>.</summary>
    public CheckpointSettings Read(ParseResult parse, string? outPath)
    {
        string? dir = parse.GetValue(Directory);
        if (dir is null && !string.IsNullOrWhiteSpace(outPath))
            dir = Path.ChangeExtension(Path.TrimEndingDirectorySeparator(Path.GetFullPath(outPath)), ".checkpoints");
        int every = parse.GetValue(Every);
        if (every > 0 && dir is null) throw new ArgumentException("--checkpoint-every: give --checkpoint-dir (or --out, next to which checkpoints go by default).");
        string? resume = parse.GetValue(Resume);
        if (resume is not null && !System.IO.Directory.Exists(resume)) throw new DirectoryNotFoundException($"--resume {resume}: no such checkpoint directory.");
        // A directory of checkpoints stands for its newest complete one (a kill -9 can leave a newer, incomplete one).
        if (resume is not null) resume = CheckpointManifest.Resolve(resume);
        int limit = parse.GetValue(SaveTotalLimit);
        return new CheckpointSettings(dir, every, resume, parse.GetValue(StopAfterSteps)) { SaveTotalLimit = limit > 0 ? limit : null };
    }
}

/// <summary>One invocation's checkpoint settings (see <see cref="CheckpointOptions"/>).</summary>
internal sealed record CheckpointSettings(string? Directory, int Every, string? ResumeFrom, int StopAfterSteps)
{
    /// <summary>At most this many checkpoint folders are kept (HF's save_total_limit); null keeps all.</summary>
    public int? SaveTotalLimit { get; init; }

    /// <summary>Settings outside the trainer's arguments a resume must match (normalisation, digits): <see cref="TrainingArguments.RunTags"/>.</summary>
    public IReadOnlyDictionary<string, string> Tags { get; init; } = new Dictionary<string, string>();

    /// <summary>No checkpoints, no resume (the demo).</summary>
    public static CheckpointSettings None { get; } = new(null, 0, null, 0);

    /// <summary>
    /// Checks the checkpoint folder before training (a checkpoint is written on Ctrl+C at the latest); call after the
    /// command's own --out check, from which the folder may derive.
    /// </summary>
    public void RequireWritable()
    {
        if (Directory is not null) ModelArguments.RequireWritableDirectory("--checkpoint-dir", Directory, createParents: true);
    }

    /// <summary>Applies the settings to the trainer's arguments.</summary>
    public TrainingArguments Apply(TrainingArguments args) => Directory is null ? args : args with
    {
        OutputDir = Directory,
        SaveStrategy = Every > 0 ? IntervalStrategy.Steps : IntervalStrategy.No,
        SaveSteps = Every > 0 ? Every : args.SaveSteps,
        SaveOnCancel = true,
        SaveTotalLimit = SaveTotalLimit,
        RunTags = Tags,
    };
}

/// <summary>Training was interrupted (Ctrl+C); the command exits with <see cref="CheckpointOptions.InterruptedExitCode"/>.</summary>
internal sealed class TrainingInterruptedException(string message, Exception? inner = null) : Exception(message, inner);
