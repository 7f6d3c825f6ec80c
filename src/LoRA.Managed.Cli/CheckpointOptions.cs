using System.CommandLine;
using LoRA.Managed.Recipes;
using LoRA.Managed.Training;

namespace LoRA.Managed.Cli;

/// <summary>
/// The checkpoint options of <c>train</c> and <c>finetune</c>: <c>--checkpoint-every</c>, <c>--checkpoint-dir</c>,
/// <c>--resume</c>.
/// </summary>
internal sealed class CheckpointOptions
{
    /// <summary>Exit status when training was interrupted (Ctrl+C): 128 + SIGINT, as shells report it.</summary>
    public const int InterruptedExitCode = 130;

    public Option<int> Every { get; } = CommonOptions.Int("--checkpoint-every", 0, 0,
        "Write a resumable checkpoint (weights, optimiser, data order, losses) every N optimiser steps; 0: only when " +
        "interrupted with Ctrl+C.");

    public Option<string?> Directory { get; } = CommonOptions.NonEmptyPath(new Option<string?>("--checkpoint-dir")
    {
        Description = "Where checkpoint-{step} folders go (default: next to --out, as <out>.checkpoints).",
        HelpName = "DIR",
    });

    public Option<int> SaveTotalLimit { get; } = CommonOptions.Int("--save-total-limit", 0, 0,
        "Keep at most N checkpoint folders, deleting the oldest (never the newest); 0: keep all.");

    public Option<string?> Resume { get; } = CommonOptions.NonEmptyPath(new Option<string?>("--resume")
    {
        Description = "Continue from a checkpoint-{step} folder, or from the newest complete one in a checkpoint " +
            "directory; give the same options (seed, digits, epochs, batch size, lr, normalisation) as the " +
            "interrupted run (a difference is refused). The result is bit for bit that of an uninterrupted run.",
        HelpName = "DIR",
    });

    public IEnumerable<Option> All => [Every, Directory, SaveTotalLimit, Resume];

    /// <summary>
    /// <paramref name="options"/> with this invocation's checkpoint settings, the directory defaulted from
    /// <paramref name="outPath"/> (as <c>&lt;out&gt;.checkpoints</c>), and a directory of checkpoints given to
    /// <c>--resume</c> replaced by its newest complete checkpoint (a kill -9 can leave a newer, incomplete one).
    /// </summary>
    public ClassifierTrainingOptions Apply(ParseResult parse, string? outPath, ClassifierTrainingOptions options)
    {
        string? dir = parse.GetValue(Directory);
        if (dir is null && !string.IsNullOrWhiteSpace(outPath))
            dir = Path.ChangeExtension(Path.TrimEndingDirectorySeparator(Path.GetFullPath(outPath)), ".checkpoints");
        int every = parse.GetValue(Every);
        if (every > 0 && dir is null)
            throw new ArgumentException("--checkpoint-every: give --checkpoint-dir (or --out, next to which " +
                "checkpoints go by default).");
        string? resume = parse.GetValue(Resume);
        if (resume is not null && !System.IO.Directory.Exists(resume))
            throw new DirectoryNotFoundException($"--resume {resume}: no such checkpoint directory.");
        if (resume is not null) resume = CheckpointManifest.Resolve(resume);
        int limit = parse.GetValue(SaveTotalLimit);
        return options with
        {
            CheckpointDirectory = dir, CheckpointEvery = every, ResumeFrom = resume, SaveTotalLimit = limit > 0
                ? limit : null,
        };
    }

    /// <summary>
    /// Checks the checkpoint folder before training (a checkpoint is written on Ctrl+C at the latest); call after the
    /// command's own --out check, from which the folder may derive.
    /// </summary>
    public static void RequireWritable(ClassifierTrainingOptions options)
    {
        if (options.CheckpointDirectory is { } dir)
            ModelArguments.RequireWritableDirectory("--checkpoint-dir", dir, createParents: true);
    }
}
