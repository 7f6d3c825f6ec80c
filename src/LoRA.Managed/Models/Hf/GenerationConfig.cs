using System.Text.Json;

namespace LoRA.Managed.Models.Hf;

/// <summary>The part of <c>generation_config.json</c> used here: the EOS ids (an int or a list) and the BOS
/// id.</summary>
/// <param name="EosTokenIds">Ids that end generation.</param>
/// <param name="BosTokenId">The begin-of-sequence id, or null.</param>
public sealed record GenerationConfig(IReadOnlyList<int> EosTokenIds, int? BosTokenId)
{
    /// <summary>The file name Hugging Face uses.</summary>
    public const string FileName = "generation_config.json";

    /// <summary>Reads <paramref name="path"/>.</summary>
    /// <exception cref="IO.InvalidDataFormatException">A field is malformed; the message names the file and
    /// field.</exception>
    public static GenerationConfig Read(string path)
    {
        using JsonDocument doc = JsonFields.Parse(path);
        return Parse(new JsonFields(doc.RootElement, path));
    }

    internal static GenerationConfig Parse(JsonFields f) => new(f.IntOrList("eos_token_id"), f.Int("bos_token_id", 0));
}
