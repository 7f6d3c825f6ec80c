namespace LoRA.Managed.IO;

/// <summary>
/// Opens the files the library reads (models, adapters, configs, datasets, checkpoints) only when they are regular
/// files with content. A FIFO would block the open forever (no writer), and a device such as <c>/dev/zero</c> never
/// ends; .NET does not expose a file's type on Unix, but every such node reports a length of 0, which no file the
/// library reads can have (each format starts with a header), so a zero length is refused before anything is opened.
/// </summary>
public static class InputFile
{
    /// <summary>Throws unless <paramref name="path"/> is an existing, non-empty regular file.</summary>
    /// <exception cref="FileNotFoundException">Nothing is there.</exception>
    /// <exception cref="InvalidDataFormatException">A directory, or empty / not a regular file (a FIFO, socket or
    /// device); the message names it.</exception>
    public static void RequireRegular(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
            throw new InvalidDataFormatException(path, "(file)", "is a directory; give a file.");
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"{path}: no such file.", path);
        if (info.Length == 0)
            throw new InvalidDataFormatException(path, "(file)", "is empty or not a regular file (a FIFO, socket or " +
                "device, which would block or never end); give a regular file.");
    }

    /// <summary><see cref="RequireRegular"/>, then opens the file for reading (shared read, 64 KiB buffer).</summary>
    /// <exception cref="FileNotFoundException">Nothing is there.</exception>
    /// <exception cref="InvalidDataFormatException">Not a non-empty regular file (named).</exception>
    public static FileStream OpenRead(string path)
    {
        RequireRegular(path);
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
    }
}
