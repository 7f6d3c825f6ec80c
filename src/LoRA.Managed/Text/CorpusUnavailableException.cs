namespace LoRA.Managed.Text;

/// <summary>A corpus could not be fetched or verified; the message names the files, their hashes and where to put
/// them.</summary>
public sealed class CorpusUnavailableException : Exception
{
    /// <summary>Creates the exception with its full instructions.</summary>
    public CorpusUnavailableException(string message, Exception? inner = null) : base(message, inner) { }
}
