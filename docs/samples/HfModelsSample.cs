using System.Text;
using LoRA.Managed.Autograd;
using LoRA.Managed.IO;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using LoRA.Managed.Text.Tokenizers;

namespace LoRA.Managed.Samples;

/// <summary>
/// Chapter 9: how a Hugging Face folder becomes a model (config.json, safetensors keys, Conv1D), the two BPE
/// flavours (byte-level, and SentencePiece-style with byte fallback), grouped-query attention's shapes, and the KV
/// cache giving the same logits as a full forward. Uses the repository's tiny fixtures and the shared stories260K.
/// </summary>
public static class HfModelsSample
{
    /// <summary>Prints what chapter 9 quotes.</summary>
    public static void Run(TextWriter o)
    {
        Checkpoint(o);
        ByteLevelBpe(o);
        SentencePieceWithByteFallback(o);
        KvCacheGivesTheSameLogits(o);
    }

    private static void Checkpoint(TextWriter o)
    {
        string dir = Fixture("llama-gqa-tied");
        HfConfig config = HfConfig.Read(Path.Combine(dir, "config.json"));
        o.WriteLine($"{config.ModelType}: hidden {config.HiddenSize}, {config.Layers} layers, " +
                    $"{config.Heads} query heads, {config.KvHeads} key/value heads of {config.HeadDim}");
        SafeTensorsHeader header = SafeTensors.ReadHeader(Path.Combine(dir, "model.safetensors"));
        var layer0 = header.Entries.Where(e => e.Name.Contains("layers.0.self_attn")).OrderBy(e => e.Name);
        foreach (SafeTensorsEntry e in layer0)
            o.WriteLine($"  {e.Name} {e.DType} [{string.Join(", ", e.Shape)}]");
        CausalLm model = HfModel.Load(dir);                        // the file's "model." prefix is optional
        o.WriteLine($"  our parameter: {model.NamedParameters().First(p => p.Key.EndsWith("q_proj.weight")).Key}");

        string gpt2Dir = Fixture("gpt2-tiny");
        SafeTensorsEntry stored = SafeTensors.ReadHeader(Path.Combine(gpt2Dir, "model.safetensors")).Entries
            .First(e => e.Name.EndsWith("h.0.attn.c_attn.weight"));
        CausalLm gpt2 = HfModel.Load(gpt2Dir);                      // this file has no "transformer." prefix
        var (name, module) = gpt2.NamedModules().First(m => m.Key.EndsWith("h.0.attn.c_attn"));
        o.WriteLine($"gpt2: file key {stored.Name} [{string.Join(", ", stored.Shape)}] -> our {name}.weight, " +
                    $"a {module}");
    }

    // GPT-2's byte-level BPE on a toy vocabulary: the 256 byte symbols and six merges.
    private static void ByteLevelBpe(TextWriter o)
    {
        string dir = Directory.CreateTempSubdirectory("lora-managed-bpe").FullName;
        var vocab = new Dictionary<string, int>();
        foreach (char c in ByteSymbols()) vocab[c.ToString()] = vocab.Count;
        string[] merges = ["l o", "lo w", "e r", "Ġ low", "e s", "es t"];
        foreach (string m in merges) vocab[m.Replace(" ", "")] = vocab.Count;
        File.WriteAllText(Path.Combine(dir, "vocab.json"), System.Text.Json.JsonSerializer.Serialize(vocab));
        File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\n" + string.Join("\n", merges) + "\n");
        var bpe = HfTokenizer.FromVocabAndMerges(Path.Combine(dir, "vocab.json"), Path.Combine(dir, "merges.txt"));
        int[] ids = bpe.Encode("lower lowest é");
        o.WriteLine($"byte-level: {string.Join(" ", ids.Select(i => bpe.TokenToString(i)))} -> \"{bpe.Decode(ids)}\"");
        Directory.Delete(dir, recursive: true);
    }

    // GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others (space, control bytes, ...) are
    // shifted to code points from 256 on, so every byte is one visible character (space becomes 'Ġ', U+0120).
    private static IEnumerable<char> ByteSymbols()
    {
        var printable = new HashSet<int>(Enumerable.Range('!', '~' - '!' + 1)
            .Concat(Enumerable.Range('¡', '¬' - '¡' + 1)).Concat(Enumerable.Range('®', 'ÿ' - '®' + 1)));
        int shifted = 0;
        for (int b = 0; b < 256; b++) yield return printable.Contains(b) ? (char)b : (char)(256 + shifted++);
    }

    private static void SentencePieceWithByteFallback(TextWriter o)
    {
        var sp = HfTokenizer.FromFolder(SharedModel());               // Llama 2's layout: ▁ for spaces, <0xNN> bytes
        int[] ids = sp.Encode("Pip ate 3 fish for €1 at the 猫 café");
        o.WriteLine($"sentencepiece: {string.Join(" ", ids.Select(i => sp.TokenToString(i)))}");
        o.WriteLine($"  decoded: \"{sp.Decode(ids, skipSpecialTokens: true)}\"");
    }

    private static void KvCacheGivesTheSameLogits(TextWriter o)
    {
        CausalLm model = HfModel.Load(Fixture("llama-gqa-tied"));
        int[] ids = [1, 7, 19, 3, 28, 11, 40, 5];
        float[] full;
        using (Tape.NoGrad()) full = model.Forward(ids, 1, ids.Length).Data.ToArray();      // (8, V): every row at once
        KvCache cache = model.NewCache(ids.Length);
        double worst = 0;
        for (int t = 0; t < ids.Length; t++)                          // one token at a time, as generation runs
        {
            Tensor logits = model.Head(model.ForwardCached(ids.AsSpan(t, 1), cache));
            for (int v = 0; v < model.VocabSize; v++)
                worst = Math.Max(worst, Math.Abs(logits.Data[v] - full[t * model.VocabSize + v]));
        }
        o.WriteLine($"kv cache: {cache.Length} positions cached, {cache.RowSize} floats per position and layer; " +
                    $"max |cached - full| = {(worst < 1e-5 ? "0 (below 1e-5)" : worst.ToString("E2"))}");
    }

    private static string Fixture(string name) => Path.Combine(RepoRoot(), "tests", "fixtures", "hf", name);

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "LoRA.Managed.sln"))) return d.FullName;
        throw new DirectoryNotFoundException("LoRA.Managed.sln not found above " + AppContext.BaseDirectory);
    }

    private static string SharedModel()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "shared", "models", "stories260K");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException("no sibling shared/models/stories260K found.");
    }
}
