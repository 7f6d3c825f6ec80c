using LoRA.Managed.IO;

namespace LoRA.Managed.Data;

/// <summary>
/// An IDX file (the MNIST format) is malformed: <see cref="InvalidDataFormatException.File"/> names the file
/// and <see cref="InvalidDataFormatException.Field"/> the field that is wrong (magic, data type, dimension count,
/// a dimension, item count, image size, length, gzip stream).
/// </summary>
/// <remarks>
/// A subtype of <see cref="InvalidDataFormatException"/>, so one <c>catch</c> handles bad IDX, safetensors and
/// adapter-config files alike.
/// </remarks>
public sealed class IdxFormatException : InvalidDataFormatException
{
    /// <summary>Creates the exception for <paramref name="fileName"/>'s <paramref name="field"/>.</summary>
    public IdxFormatException(string fileName, string field, string detail, Exception? inner = null)
        : base(fileName, field, detail, inner)
    {
    }

    /// <summary>The file (path or name) that failed to parse; the same as
    /// <see cref="InvalidDataFormatException.File"/>.</summary>
    public string FileName => File;
}
