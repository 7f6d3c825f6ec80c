namespace LoRA.Managed.Data;

/// <summary>
/// A dataset is neither on disk nor downloadable; the message names the files needed and the directory to put them in.
/// </summary>
public sealed class DatasetUnavailableException : IOException
{
    /// <summary>Creates the exception.</summary>
    public DatasetUnavailableException(string message, Exception? inner = null) : base(message, inner) { }
}
