using System.Text.Json;
using LoRA.Managed.IO;

namespace LoRA.Managed.Text;

/// <summary>
/// A fine-tuning file for a causal LM: <c>.txt</c> (UTF-8 text tokenized whole and packed into context-length
/// blocks, every token supervised) or <c>.jsonl</c> (one JSON object per line: <c>{"text": …}</c>, every token after
/// the first supervised, or <c>{"prompt": …, "completion": …}</c>, only the completion supervised, as SFT trainers do).
/// JSONL rows end with the tokenizer's EOS so the model learns to stop; the completion is tokenized without special
/// tokens and appended to the prompt's ids.
/// </summary>
public static class LmDataFile
{
    /// <summary>Either the packed blocks of a .txt file or the rows of a .jsonl file.</summary>
    public sealed record Content(PackedSequences? Blocks, CompletionExamples? Rows)
    {
        /// <summary>Training units (blocks or rows).</summary>
        public int Count => Blocks?.Count ?? Rows!.Count;
    }

    /// <summary>
    /// Reads <paramref name="path"/> into training and validation blocks or rows of at most <paramref name="context"/>
    /// positions: the last <paramref name="evalFraction"/> of the tokens (.txt) or of the rows (.jsonl, when there are
    /// at least 10) go to validation; null when there are none.
    /// </summary>
    /// <exception cref="InvalidDataFormatException">The extension is neither .txt nor .jsonl, a line is not a JSON
    /// object with text or prompt+completion strings, or nothing fits.</exception>
    public static (Content Train, Content? Validation) Read(string path, ITextTokenizer tokenizer, int context,
        double evalFraction)
    {
        if (!(evalFraction >= 0 && evalFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(evalFraction), evalFraction,
                "LmDataFile: the evaluation fraction must be in [0, 1).");
        string ext = Path.GetExtension(path ?? "").ToLowerInvariant();
        if (ext == ".txt" && evalFraction > 0)
        {
            int[] tokens = tokenizer.Encode(File.ReadAllText(path!));
            var (train, validation) = TrainValidationSplit.Split(tokens, evalFraction);
            PackedSequences t = SequencePacker.Pack(train, context), v = SequencePacker.Pack(validation, context);
            if (t.Count == 0)
                throw new InvalidDataFormatException(path!, "text",
                    $"{train.Length} training tokens do not fill one block of {context} + 1.");
            return (new Content(t, null), v.Count == 0 ? null : new Content(v, null));
        }
        if (ext != ".jsonl") return (Read(path!, tokenizer, context), null);
        List<(int[], int)> rows = ReadRows(path!, tokenizer);
        int held = evalFraction > 0 && rows.Count >= 10 ? Math.Max(1, (int)Math.Round(rows.Count * evalFraction)) : 0;
        int pad = tokenizer.EosTokenId ?? 0;
        Content trainRows = Build(path!, rows.GetRange(0, rows.Count - held), context, pad);
        return (trainRows,
            held == 0 ? null : Build(path!, rows.GetRange(rows.Count - held, held), trainRows.Rows!.Time, pad));
    }

    /// <summary>Reads <paramref name="path"/> into blocks or rows of at most <paramref name="context"/>
    /// positions.</summary>
    /// <exception cref="InvalidDataFormatException">The extension is neither .txt nor .jsonl, a line is not a JSON
    /// object with text or prompt+completion strings, or nothing fits.</exception>
    public static Content Read(string path, ITextTokenizer tokenizer, int context)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tokenizer);
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext == ".txt")
        {
            int[] tokens = tokenizer.Encode(File.ReadAllText(path));
            PackedSequences blocks = SequencePacker.Pack(tokens, context);
            if (blocks.Count == 0)
                throw new InvalidDataFormatException(path, "text",
                    $"{tokens.Length} tokens do not fill one block of {context} + 1.");
            return new Content(blocks, null);
        }
        if (ext != ".jsonl")
            throw new InvalidDataFormatException(path, "extension", $"'{ext}' is neither .txt nor .jsonl.");
        return Build(path, ReadRows(path, tokenizer), context, tokenizer.EosTokenId ?? 0);
    }

    private static List<(int[], int)> ReadRows(string path, ITextTokenizer tokenizer)
    {
        var examples = new List<(int[], int)>();
        int lineNo = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            examples.Add(Row(line, lineNo, path, tokenizer));
        }
        return examples;
    }

    private static Content Build(string path, List<(int[], int)> examples, int context, int padId)
    {
        try
        {
            return new Content(null, new CompletionExamples(examples, context, padId));
        }
        catch (ArgumentException ex)
        {
            throw new InvalidDataFormatException(path, "rows", ex.Message, ex);
        }
    }

    private static (int[], int) Row(string line, int lineNo, string path, ITextTokenizer tokenizer)
    {
        string field = $"line {lineNo}";
        JsonDocument doc;
        try { doc = JsonDocument.Parse(line); }
        catch (JsonException ex)
        {
            throw new InvalidDataFormatException(path, field, $"not JSON ({ex.Message.Split('\n')[0]})", ex);
        }
        using (doc)
        {
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new InvalidDataFormatException(path, field, $"expected an object, found {root.ValueKind}.");
            string? Get(string name) => root.TryGetProperty(name, out var el)
                ? el.ValueKind == JsonValueKind.String ? el.GetString()
                : throw new InvalidDataFormatException(path, $"{field}.{name}",
                    $"expected a string, found {el.ValueKind}.")
                : null;
            string? text = Get("text"), prompt = Get("prompt"), completion = Get("completion");
            int? eos = tokenizer.EosTokenId;
            if (prompt is not null && completion is not null)
            {
                int[] p = tokenizer.Encode(prompt), c = tokenizer.Encode(completion, addSpecialTokens: false);
                return ([.. p, .. c, .. WithEos(c, eos)], p.Length);
            }
            if (text is not null)
            {
                int[] t = tokenizer.Encode(text);
                return ([.. t, .. WithEos(t, eos)], 0);
            }
            throw new InvalidDataFormatException(path, field,
                "expected {\"text\": ...} or {\"prompt\": ..., \"completion\": ...}.");
        }
    }

    private static int[] WithEos(int[] tokens, int? eos) => eos is { } e && (tokens.Length == 0 || tokens[^1] != e)
        ? [e] : [];
}
