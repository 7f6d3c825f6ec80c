using System.Text;

namespace LoRA.Managed.IO;

/// <summary>
/// Checks where a file or folder will be written, before the work that produces it starts: a run should not train for
/// an hour and then find that its output cannot be saved. Each check throws one <see cref="IOException"/> whose
/// message starts with the path. What is refused: an empty path; a name too long for the temporary file
/// <see cref="AtomicFile"/> writes beside the target; a directory where a file goes (and the reverse); a symbolic
/// link (a save renames over the link itself, it never writes through to the link's target, which would surprise);
/// an existing empty or non-regular target (a FIFO or device: .NET does not expose a file's type, and both report a
/// length of 0); a missing folder; and a folder the process cannot create files in (probed by creating one).
/// </summary>
public static class OutputPath
{
    /// <summary>The longest file name most file systems allow, in bytes (Linux's NAME_MAX, NTFS's 255 UTF-16
    /// units).</summary>
    public const int MaxNameBytes = 255;

    /// <summary>Bytes <see cref="AtomicFile"/> adds to a name for its temporary and backup files: <c>.</c> + name +
    /// <c>.</c> + 32 hex digits + <c>.tmp</c>.</summary>
    public const int TemporarySuffixBytes = 1 + 1 + 32 + 4;

    /// <summary>Throws unless a file can be written at <paramref name="path"/> through <see cref="AtomicFile"/>; its
    /// folder must exist.</summary>
    /// <exception cref="IOException">The message names the path and what is wrong with it.</exception>
    public static void RequireWritableFile(string path)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new IOException("\"\": the path is empty; give a file path.");
        string name = Path.GetFileName(path);
        if (name.Length == 0) throw new IOException($"{path}: ends with a directory separator; give a file path.");
        int bytes = Encoding.UTF8.GetByteCount(name);
        if (bytes + TemporarySuffixBytes > MaxNameBytes)
            throw new IOException($"{path}: the file name is {bytes} bytes; the temporary file saved beside it needs " +
                $"{bytes + TemporarySuffixBytes}, more than the {MaxNameBytes} a file name may have. Give a shorter " +
                "name.");
        if (Directory.Exists(path) && new DirectoryInfo(path).LinkTarget is null) throw new IOException($"{path}: is " +
            "a directory; give a file path.");
        RequireReplaceable(path);
        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"{path}: directory {folder} does not " +
            "exist.");
        RequireCanCreateFiles(folder, path);
    }

    /// <summary>
    /// Throws unless a folder can be written at <paramref name="path"/>: it is not a file, and it exists or its parent
    /// does (<paramref name="createParents"/>: or the nearest existing ancestor), and files can be created there.
    /// </summary>
    /// <exception cref="IOException">The message names the path and what is wrong with it.</exception>
    public static void RequireWritableDirectory(string path, bool createParents = false)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new IOException("\"\": the path is empty; give a directory path.");
        if (File.Exists(path)) throw new IOException($"{path}: is a file; give a directory path.");
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        if (Directory.Exists(full))
        {
            RequireCanCreateFiles(full, path);
            return;
        }
        string? parent = Path.GetDirectoryName(full);
        string? existing = parent;
        while (createParents && existing is not null && !Directory.Exists(existing))
        {
            if (File.Exists(existing)) throw new IOException($"{path}: {existing} is a file, so no directory can be " +
                "made under it.");
            existing = Path.GetDirectoryName(existing);
        }
        if (existing is null || !Directory.Exists(existing))
            throw new DirectoryNotFoundException($"{path}: directory {parent} does not exist.");
        RequireCanCreateFiles(existing, path);
    }

    /// <summary>
    /// Throws when replacing <paramref name="path"/> would replace something that is not a regular file with content:
    /// a symbolic link, or an empty or special file (a FIFO or device).
    /// </summary>
    /// <exception cref="IOException">The message names the path.</exception>
    public static void RequireReplaceable(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is { } link)
            throw new IOException($"{path}: is a symbolic link (to {link}); a save would replace the link, not write " +
                $"to {link}. Give the real path or another name.");
        if (info.Exists && info.Length == 0)
            throw new IOException($"{path}: exists and is empty or not a regular file (a FIFO or device), which a " +
                "save must not replace; remove it or give another path.");
    }

    private static void RequireCanCreateFiles(string folder, string path)
    {
        string probe = Path.Combine(folder, $".lora-managed-probe-{Guid.NewGuid():N}");
        try
        {
            using var _ = new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1,
                FileOptions.DeleteOnClose);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{path}: cannot create files in {folder} ({e.Message.TrimEnd('.')}).", e);
        }
    }
}
