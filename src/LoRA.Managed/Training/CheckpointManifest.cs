using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoRA.Managed.IO;

namespace LoRA.Managed.Training;

/// <summary>
/// The mark of a complete checkpoint folder: <c>checkpoint_complete.json</c>, <c>{"files": {name: sha256}}</c> over
/// every other file of the checkpoint, written as the last file of the same <see cref="AtomicFile.WriteAll"/> update.
/// The renames happen in order, so the mark appears only after every file is in place; and since it holds their hashes,
/// a folder re-saved over an older one and killed halfway (new weights, old state, old mark) fails the check too.
/// </summary>
/// <remarks>
/// After <c>kill -9</c> a folder can hold some new files and no mark, or temporary files only; <see
/// cref="FindNewestComplete"/> skips such folders, and a resume from one is refused naming the file that does not
/// match.
/// </remarks>
public static class CheckpointManifest
{
    /// <summary>The mark's file name.</summary>
    public const string FileName = "checkpoint_complete.json";

    /// <summary>The mark for the given files (name and exact bytes).</summary>
    public static byte[] Serialize(IEnumerable<(string Name, byte[] Bytes)> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        var hashes = new JsonObject();
        foreach (var (name, bytes) in files.OrderBy(f => f.Name, StringComparer.Ordinal)) hashes[name] = Hash(bytes);
        return JsonSerializer.SerializeToUtf8Bytes(new JsonObject { ["files"] = hashes },
            JsonNodeContext.Indented.JsonObject);
    }

    /// <summary>Null when <paramref name="directory"/> holds a mark and every file it lists with the listed hash; else
    /// what is wrong.</summary>
    public static string? Problem(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        string path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) return $"{path}: missing, so the checkpoint was never completed (the run was killed " +
            "while writing it?).";
        JsonObject files;
        try
        {
            files = TrainingPosition.ReadObject(path)["files"]!.AsObject();
            if (files.Count == 0) return $"{path}: files: empty.";
        }
        catch (Exception e)
            when (e is InvalidDataFormatException or NullReferenceException or InvalidOperationException)
        {
            return $"{path}: files: not a map of file names to SHA-256 hashes ({e.Message}).";
        }
        foreach (var (name, hash) in files)
        {
            string file = Path.Combine(directory, name);
            if (name.Contains('/') || name.Contains('\\') || name is "." or "..") return $"{path}: files: '{name}' " +
                "is not a file name.";
            if (!File.Exists(file)) return $"{file}: missing, but listed in {FileName}.";
            string? expected = hash?.GetValueKind() == JsonValueKind.String ? hash.GetValue<string>() : null;
            using var stream = InputFile.OpenRead(file);
            if (!string.Equals(Convert.ToHexStringLower(SHA256.HashData(stream)), expected, StringComparison.Ordinal))
                return $"{file}: its SHA-256 is not the one in {FileName}; the folder mixes two saves (one was " +
                    "interrupted).";
        }
        return null;
    }

    /// <summary>Throws unless <paramref name="directory"/> is a complete checkpoint (see <see
    /// cref="Problem"/>).</summary>
    /// <exception cref="InvalidDataFormatException">The message names the file that is missing or does not
    /// match.</exception>
    public static void Require(string directory)
    {
        if (Problem(directory) is { } problem)
            throw new InvalidDataFormatException(Path.Combine(directory, FileName), "(checkpoint)", "not a complete " +
                $"checkpoint: {problem}");
    }

    /// <summary>The <c>checkpoint-{step}</c> folder with the highest step under <paramref name="parent"/> that is
    /// complete, or null.</summary>
    public static string? FindNewestComplete(string parent)
    {
        ArgumentNullException.ThrowIfNull(parent);
        if (!Directory.Exists(parent)) return null;
        foreach (var (_, dir) in Checkpoints(parent).OrderByDescending(c => c.Step))
            if (Problem(dir) is null) return dir;
        return null;
    }

    /// <summary>The <c>checkpoint-{step}</c> folders directly under <paramref name="parent"/>, with their
    /// steps.</summary>
    public static IEnumerable<(int Step, string Path)> Checkpoints(string parent)
    {
        foreach (string dir in Directory.GetDirectories(parent, "checkpoint-*"))
            if (int.TryParse(Path.GetFileName(dir)["checkpoint-".Length..], NumberStyles.None,
                CultureInfo.InvariantCulture, out int step))
                yield return (step, Path.GetFullPath(dir));
    }

    /// <summary>
    /// What a resume should read for <paramref name="path"/>: the folder itself when it is a checkpoint (it holds
    /// <c>trainer_state.json</c>), else the newest complete <c>checkpoint-{step}</c> under it (HF's
    /// <c>resume_from_checkpoint=True</c> on <c>output_dir</c>).
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">There is no such folder, or it holds no complete
    /// checkpoint.</exception>
    public static string Resolve(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        TrainingPosition.RequireDirectory(path);
        if (File.Exists(Path.Combine(path, TrainerCheckpoint.StateFileName)) || !Checkpoints(path).Any()) return path;
        return FindNewestComplete(path) ?? throw new DirectoryNotFoundException(
            $"Trainer: {Path.GetFullPath(path)} holds checkpoint folders but none is complete ({FileName} missing or " +
                "not matching); nothing to resume from.");
    }

    private static string Hash(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
