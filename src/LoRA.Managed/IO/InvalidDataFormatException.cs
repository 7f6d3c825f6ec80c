namespace LoRA.Managed.IO;

/// <summary>
/// The one exception the file readers of this library throw for bad file content: a malformed or truncated
/// IDX, safetensors or <c>adapter_config.json</c> file, or tensors that do not fit the model they are loaded
/// into. <see cref="File"/> names the file and <see cref="Field"/> the header field, JSON key or tensor at
/// fault; the message starts with both. Catch this type to handle every format problem at once;
/// <see cref="Data.IdxFormatException"/> is the IDX reader's subtype.
/// </summary>
/// <remarks>
/// Derives from <see cref="IOException"/> because <see cref="InvalidDataException"/> is sealed, so a caller
/// that already handles <see cref="IOException"/> handles bad content too.
/// </remarks>
public class InvalidDataFormatException : IOException
{
    /// <summary>Creates the exception for <paramref name="file"/> and <paramref name="field"/> with a description of
    /// the problem.</summary>
    public InvalidDataFormatException(string file, string field, string problem, Exception? inner = null)
        : base($"{file}: {field}: {problem}", inner)
    {
        File = file;
        Field = field;
    }

    /// <summary>The file (path or caller-given source name) that was being read.</summary>
    public string File { get; }

    /// <summary>The field, header entry or tensor name at fault.</summary>
    public string Field { get; }
}
