namespace LoRA.Managed.Data;

/// <summary>
/// An IDX file (the MNIST format) is malformed: the message names the file and the field that is wrong
/// (magic, dimension count, a dimension, item count, length).
/// </summary>
/// <remarks>
/// Derives from <see cref="IOException"/> because <see cref="InvalidDataException"/> is sealed; catch
/// <see cref="IOException"/> to handle every file problem at once.
/// </remarks>
public sealed class IdxFormatException : IOException
{
    /// <summary>Creates the exception for <paramref name="fileName"/>'s <paramref name="field"/>.</summary>
    public IdxFormatException(string fileName, string field, string detail)
        : base($"{fileName}: bad IDX {field}: {detail}")
    {
        FileName = fileName;
        Field = field;
    }

    /// <summary>The file (path or name) that failed to parse.</summary>
    public string FileName { get; }

    /// <summary>The header field or property that is wrong: "magic", "dimension count", "item count", "length", …</summary>
    public string Field { get; }
}
