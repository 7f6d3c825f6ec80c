using LoRA.Managed.IO;
using LoRA.Managed.Nn;

namespace LoRA.Managed.Models.Hf;

/// <summary>
/// Writes a <see cref="CausalLm"/> as a Hugging Face folder <c>from_pretrained</c> loads: <c>model.safetensors</c>
/// (float32, the model's state_dict names, metadata <c>{"format": "pt"}</c>; a tied head is not stored, as
/// <c>save_pretrained</c> does) beside the source folder's <c>config.json</c>, <c>generation_config.json</c> and
/// tokenizer files, copied unchanged. Every file is written through <see cref="AtomicFile.WriteAll"/>, so a failure
/// leaves an older folder as it was.
/// </summary>
public static class HfModelWriter
{
    /// <summary>The files copied from the source folder when present.</summary>
    public static readonly IReadOnlyList<string> CopiedFiles =
    [
        HfConfig.FileName, GenerationConfig.FileName, "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.json", "merges.txt", "tokenizer.model", "added_tokens.json",
    ];

    /// <summary>
    /// Writes <paramref name="model"/> into <paramref name="directory"/> with the non-weight files of
    /// <paramref name="sourceDirectory"/> (default: the folder the model was loaded from).
    /// </summary>
    /// <exception cref="InvalidOperationException">The model still carries LoRA layers (merge and unload them first),
    /// holds a weight quantised, or has no source folder.</exception>
    public static void Save(CausalLm model, string directory, string? sourceDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        // Adapted layers rename their weights (X.base_layer.weight, X.lora_A.<adapter>.weight): not a Hugging Face
        // state_dict.
        if (model.NamedParameters()
            .Any(p => p.Key.Contains(".base_layer.", StringComparison.Ordinal)
                || p.Key.Contains(".lora_A.", StringComparison.Ordinal)))
            throw new InvalidOperationException("HfModelWriter: the model still has LoRA layers; call " +
                "PeftModel.MergeAndUnload first.");
        ModelFile.RequireFloatWeights(model, "HfModelWriter");
        string source = sourceDirectory ?? model.SourceDirectory
            ?? throw new InvalidOperationException("HfModelWriter: the model was not loaded from a folder; give the " +
                "folder whose config and tokenizer to copy.");
        Directory.CreateDirectory(directory);
        byte[] weights = SafeTensors.Serialize(model.StateDict(), new Dictionary<string, string> { ["format"] = "pt" });
        var files = new List<(string,
            Action<Stream>)> { (Path.Combine(directory, HfWeights.SingleFile), s => s.Write(weights)) };
        foreach (string name in CopiedFiles)
        {
            string from = Path.Combine(source, name);
            if (!File.Exists(from)) continue;
            byte[] bytes = File.ReadAllBytes(from);
            files.Add((Path.Combine(directory, name), s => s.Write(bytes)));
        }
        AtomicFile.WriteAll(files);
        // A sharded index left from an older save would make from_pretrained read stale shards: the single file wins
        // here.
        string staleIndex = Path.Combine(directory, HfWeights.IndexFile);
        if (File.Exists(staleIndex)) File.Delete(staleIndex);
    }
}
