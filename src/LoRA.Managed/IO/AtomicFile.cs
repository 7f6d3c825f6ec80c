namespace LoRA.Managed.IO;

/// <summary>
/// Replaces a file all at once: the content goes to a temporary file in the same directory (so the final
/// rename stays on one file system and is atomic), is flushed to the disk, then renamed over the target.
/// A failure before the rename deletes the temporary file and leaves any previous target untouched.
/// <see cref="WriteAll"/> does the same for several files that belong together (an adapter's weights and config).
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/>, atomically.</summary>
    /// <remarks>A reader sees the old file or the new one, never a mixture, even if the process dies
    /// mid-write.</remarks>
    /// <exception cref="ArgumentException">The path is empty.</exception>
    public static void Write(string path, Action<Stream> write) => WriteAll([(path, write)]);

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/>, atomically.</summary>
    /// <exception cref="ArgumentException">The path is empty.</exception>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        byte[] copy = bytes.ToArray();
        Write(path, s => s.Write(copy));
    }

    /// <summary>
    /// Replaces several files as one update: every content is written to its temporary file and flushed first;
    /// only when all succeeded are they renamed over their targets, in order. A failure while writing leaves every
    /// target untouched; a failure while renaming puts back the targets already replaced (each existing target is
    /// copied aside before its rename, which is why this suits small files such as an adapter's). Temporary files and
    /// backups are removed either way.
    /// </summary>
    /// <remarks>
    /// The one window left: each rename is atomic but the set is not, so if the process is killed (or the machine
    /// loses power) between two renames, the earlier targets are new and the later ones old, and a temporary file
    /// or backup may remain (a hidden <c>.name.*.tmp</c> or <c>.name.*.bak</c>, safe to delete). Readers that must
    /// detect this can check the files against each other; the adapter loader does, through names and shapes.
    /// </remarks>
    /// <exception cref="ArgumentException">A path is empty or appears twice.</exception>
    public static void WriteAll(IReadOnlyList<(string Path, Action<Stream> Write)> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        var targets = new string[files.Count];
        for (int i = 0; i < files.Count; i++)
        {
            ArgumentException.ThrowIfNullOrEmpty(files[i].Path);
            ArgumentNullException.ThrowIfNull(files[i].Write);
            targets[i] = Path.GetFullPath(files[i].Path);
            // Never rename over a symbolic link (the link would become a file, its target untouched) or over an
            // empty or special file (a FIFO or device report length 0).
            OutputPath.RequireReplaceable(targets[i]);
        }
        if (targets.Distinct(StringComparer.Ordinal).Count() != targets.Length)
            throw new ArgumentException($"AtomicFile.WriteAll: a path appears twice in [{string.Join(", ", targets)}].",
                nameof(files));

        var temps = new List<string>(targets.Length);
        try
        {
            for (int i = 0; i < targets.Length; i++)
            {
                string dir = Path.GetDirectoryName(targets[i]) ?? ".";
                Directory.CreateDirectory(dir);
                string temp = Path.Combine(dir, $".{Path.GetFileName(targets[i])}.{Guid.NewGuid():N}.tmp");
                temps.Add(temp);
                using var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
                files[i].Write(stream);
                // Flush(true) asks the OS to write its cache to the device (fsync), so a crash after the
                // rename cannot leave a renamed but empty file.
                stream.Flush(flushToDisk: true);
            }
        }
        catch
        {
            foreach (string temp in temps) TryDelete(temp);
            throw;
        }
        RenameAll(temps, targets);
    }

    /// <summary>Renames each temporary file over its target; on a failure, restores the targets already
    /// replaced.</summary>
    private static void RenameAll(List<string> temps, string[] targets)
    {
        var backups = new string?[targets.Length];
        int done = 0;
        try
        {
            for (; done < targets.Length; done++)
            {
                if (targets.Length > 1 && File.Exists(targets[done]))
                {
                    // Copy the old target aside (rename would leave a moment with no target), so a later failure can
                    // put it back; then the rename replaces the target atomically.
                    backups[done] = Path.Combine(Path.GetDirectoryName(targets[done])!,
                        $".{Path.GetFileName(targets[done])}.{Guid.NewGuid():N}.bak");
                    File.Copy(targets[done], backups[done]!, overwrite: false);
                }
                File.Move(temps[done], targets[done], overwrite: true);
            }
        }
        catch
        {
            for (int j = done - 1; j >= 0; j--)
            {
                try
                {
                    if (backups[j] is { } backup) File.Move(backup, targets[j], overwrite: true);
                    else File.Delete(targets[j]);
                }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
            }
            for (int j = done; j < temps.Count; j++) TryDelete(temps[j]);
            // the failed target was not replaced
            if (done < backups.Length && backups[done] is { } unused) TryDelete(unused);
            throw;
        }
        foreach (string? backup in backups)
            if (backup is not null) TryDelete(backup);
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
