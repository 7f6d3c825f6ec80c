using System.Text;
using LoRA.Managed.IO;

namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// Reads the older GPT-2 pair of files, <c>vocab.json</c> (token → id) and <c>merges.txt</c> (an optional
/// <c>#version</c> line, then one <c>a b</c> merge per line, highest priority first), into the tokenizer that
/// transformers' <c>GPT2Converter</c> builds from them: byte-level BPE with the GPT-2 regex, no unknown token.
/// </summary>
internal static class VocabMergesReader
{
    private const int MaxDepth = 16;

    /// <summary>Parses both files.</summary>
    /// <exception cref="InvalidDataFormatException">A file is malformed or a merge names a token missing from the
    /// vocabulary.</exception>
    public static BpeModel Read(ReadOnlyMemory<byte> vocabUtf8, string vocabFile, ReadOnlyMemory<byte> mergesUtf8,
        string mergesFile)
    {
        var vocabJson = new JsonFields(vocabFile);
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        using (var document = StrictJson.Parse(vocabUtf8, vocabFile, "json", MaxDepth))
            foreach (var entry in vocabJson.Object(document.RootElement, "json").EnumerateObject())
            {
                string name = entry.Name.Length <= 30 ? entry.Name : entry.Name[..30] + "…";
                vocab[entry.Name] = vocabJson.Int(entry.Value,
                    "\"" + System.Text.Json.JsonEncodedText.Encode(name).ToString() + "\"");
            }

        var mergesJson = new JsonFields(mergesFile);
        if (!System.Text.Unicode.Utf8.IsValid(mergesUtf8.Span))
            throw mergesJson.Error("text", "not valid UTF-8.");
        string text = Encoding.UTF8.GetString(mergesUtf8.Span);
        if (text.StartsWith('\uFEFF')) text = text[1..];
        var pairs = new List<(string, string)>();
        // Rust's str::lines: split on \n, drop one \r before it, no empty last line after a final newline.
        string[] lines = text.Split('\n');
        int count = lines.Length > 0 && lines[^1].Length == 0 ? lines.Length - 1 : lines.Length;
        for (int i = 0; i < count; i++)
        {
            string line = lines[i].EndsWith('\r') ? lines[i][..^1] : lines[i];
            if (line.StartsWith("#version", StringComparison.Ordinal)) continue;
            pairs.Add(BpeModelReader.SplitMerge(mergesJson, line, $"line {i + 1}"));
        }
        return BpeModelReader.Build(mergesJson, vocab, pairs, "merges", null, "unk_token",
            fuseUnknown: false, byteFallback: false, ignoreMerges: false);
    }
}
