namespace LoRA.Managed.IO;

/// <summary>
/// The one exception the readers in <c>LoRA.Managed.IO</c> throw for bad file content: a malformed or
/// truncated safetensors file, an <c>adapter_config.json</c> with a wrong field, or tensors that do not fit
/// the model they are loaded into. The message names the file and the field (or tensor).
/// </summary>
public sealed class InvalidDataFormatException : IOException
{
    /// <summary>Creates the exception for <paramref name="file"/> and <paramref name="field"/> with a description of the problem.</summary>
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
