using System.Diagnostics;
using System.Text;
using LoRA.Managed.Text.Tokenizers;

namespace LoRA.Managed.Benchmarks.Text;

/// <summary>
/// Encoding throughput of <see cref="HfTokenizer"/>: each tokenizer encodes the same text (default: the licence texts
/// of <c>/usr/share/common-licenses</c> concatenated and repeated to 1 MiB) once on a fresh tokenizer (empty word
/// cache) and then three more times (warm cache, best kept); the table gives tokens per second for both, characters
/// per token and the bytes the calling thread allocated per token.
/// </summary>
public static class TokenizerThroughput
{
    /// <summary>One line per tokenizer; <paramref name="sources"/> are folders or tokenizer.json paths.</summary>
    public static string Table(IReadOnlyList<string> sources, string text)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"text: {text.Length:N0} chars, {Encoding.UTF8.GetByteCount(text):N0} UTF-8 bytes; " +
            $"{Environment.ProcessorCount} cores, one thread");
        sb.AppendLine($"{"tokenizer",-40} {"tokens",10} {"chars/tok",9} {"cold tok/s",12} " +
            $"{"warm tok/s",12} {"alloc B/tok",11}");
        foreach (string source in sources)
        {
            var load = Stopwatch.StartNew();
            HfTokenizer tokenizer = Directory.Exists(source) ? HfTokenizer.FromFolder(source)
                : HfTokenizer.FromTokenizerJson(source);
            load.Stop();
            long before = GC.GetAllocatedBytesForCurrentThread();
            var cold = Stopwatch.StartNew();
            int tokens = tokenizer.Encode(text, addSpecialTokens: false).Length;
            cold.Stop();
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            double warm = double.MaxValue;
            for (int i = 0; i < 3; i++)
            {
                var sw = Stopwatch.StartNew();
                tokenizer.Encode(text, addSpecialTokens: false);
                warm = Math.Min(warm, sw.Elapsed.TotalSeconds);
            }
            string name = source.Length <= 40 ? source : "…" + source[^39..];
            sb.AppendLine($"{name,-40} {tokens,10:N0} {text.Length / (double)tokens,9:F2} " +
                $"{tokens / cold.Elapsed.TotalSeconds,12:N0} " +
                $"{tokens / warm,12:N0} {allocated / (double)tokens,11:F1}   (load {load.Elapsed.TotalSeconds:F2} s)");
        }
        return sb.ToString();
    }

    /// <summary>The default text: the licence texts on this machine, repeated to <paramref name="chars"/>
    /// characters.</summary>
    public static string DefaultText(int chars = 1 << 20)
    {
        var files = Directory.Exists("/usr/share/common-licenses")
            ? Directory.GetFiles("/usr/share/common-licenses").Where(f => !Directory.Exists(f))
            .Order(StringComparer.Ordinal).ToArray()
            : [];
        string all = string.Concat(files.Select(File.ReadAllText));
        if (all.Length == 0)
            throw new FileNotFoundException("no text given (--text FILE) and /usr/share/common-licenses is empty");
        var sb = new StringBuilder(chars + all.Length);
        while (sb.Length < chars) sb.Append(all);
        return sb.ToString(0, chars);
    }
}
