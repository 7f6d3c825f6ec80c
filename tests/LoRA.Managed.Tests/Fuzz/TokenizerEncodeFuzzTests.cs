using System.Text;
using CsCheck;
using LoRA.Managed.Tests.Text.Tokenizers;
using LoRA.Managed.Text.Tokenizers;

namespace LoRA.Managed.Tests.Fuzz;

/// <summary>
/// Encoding 10,000 seeded random strings per tokenizer (awkward pieces and arbitrary code points, lone surrogates
/// included): no exception, every id a token, and the text back from the ids: exactly for byte-level BPE
/// (after NFC for Qwen, whose normalizer applies it), and for SentencePiece BPE with byte fallback whenever the text
/// holds no special-token string (the legacy <c>Prepend</c> normalizer puts a <c>▁</c> after each one).
/// </summary>
public class TokenizerEncodeFuzzTests
{
    private const int Cases = 10_000;

    private static readonly string[] Pieces =
    [
        "a", "Z", "the", " ", "  ", "    ", "\t", "\n", "\r\n", "\n\n", "0", "7", "123", "2024", ".", ",", "!", "'s",
        "'LL", "-", "_", "é", "e\u0301", "ß", "Å", "日本", "中", "한", "ال", "Ж", "😀", "👍🏽", "\u200D", "𝐀", "𝟏", "𠀀",
        "\u00A0", "\u2003", "\u2581", "<s>", "</s>", "<unk>", "<|endoftext|>", "<|begin_of_text|>", "<|im_start|>",
        "\0", "\u007F", "\uFFFD", "\uFEFF", "½", "①",
    ];

    private static readonly Gen<string> Piece = Gen.Frequency(
        (4, Gen.Int[0, Pieces.Length - 1].Select(i => Pieces[i])),
        (1, Gen.Int[0, 0x10FFFF].Where(c => c is < 0xD800 or > 0xDFFF).Select(char.ConvertFromUtf32)));

    private static readonly Gen<string> Text = Piece.Array[0, 30].Select(string.Concat);

    private static readonly Gen<string> TextWithLoneSurrogates = Gen.Frequency(
        (4, Piece), (1, Gen.Char['\uD800', '\uDFFF'].Select(c => c.ToString()))).Array[0, 30].Select(string.Concat);

    private static void Run(Gen<string> gen, ulong seed, Action<string> check)
    {
        var master = new PCG(1, seed);
        for (int i = 0; i < Cases; i++)
        {
            var pcg = new PCG(1, master.Next64());
            string caseSeed = pcg.ToString();
            string text = gen.Generate(pcg, null, out _);
            try { check(text); }
            catch (Exception e) when (e is not AssertionException)
            {
                Assert.Fail($"case {i} (seed {caseSeed}) {OracleTests.Show(text)}: {e.GetType().Name}: {e.Message}");
            }
        }
    }

    private static void RoundTrip(HfTokenizer t, string text, string expected)
    {
        int[] ids = t.Encode(text, addSpecialTokens: false);
        foreach (int id in ids)
            if (t.TokenToString(id) is null) Assert.Fail($"{OracleTests.Show(text)}: id {id} is no token");
        string back = t.Decode(ids);
        if (back != expected)
            Assert.Fail($"{OracleTests.Show(text)}: decoded {OracleTests.Show(back)}, expected " +
                $"{OracleTests.Show(expected)}");
    }

    [TestCase("gpt2")]
    [TestCase("llama3")]
    [TestCase("gpt2_digits")]
    public void ByteLevelDecodeOfEncodeIsTheText(string variant)
    {
        var t = TokenizerFixtures.Tokenizer(variant);
        Run(Text, 0x7E57_0001UL, text => RoundTrip(t, text, text));
    }

    [Test]
    public void QwenDecodeOfEncodeIsTheNfcText()
    {
        var t = TokenizerFixtures.Tokenizer("qwen3");
        // NFC as HF applies it (Unicode 9.0 data: later characters are left alone; the oracle fixture checks that
        // part).
        var nfc = new UnicodeNormalizer(NormalizationForm.FormC);
        Run(Text, 0x7E57_0002UL, text => RoundTrip(t, text, nfc.Normalize(text)));
    }

    [TestCase("stories260K")]
    [TestCase("llama2")]
    [TestCase("llama2_metaspace")]
    public void SentencePieceDecodeOfEncodeIsTheTextWithoutSpecialStrings(string variant)
    {
        var t = TokenizerFixtures.Tokenizer(variant);
        // ▁ in the text is the same token as a space, so it comes back as one: keep it out, with the special strings.
        var plain = Text.Select(s => s.Replace("<s>", "").Replace("</s>", "").Replace("<unk>", "")
            .Replace("\u2581", ""));
        // Metaspace with prepend_scheme "first" adds no ▁ before a text that starts with a space, and the decoder's
        // Strip then drops that space: HF loses it too (Mistral's known behaviour).
        bool losesLeadingSpace = variant == "llama2_metaspace";
        Run(plain, 0x7E57_0003UL,
            text => RoundTrip(t, text, losesLeadingSpace && text.StartsWith(' ') ? text[1..] : text));
    }

    [TestCase("gpt2_added")]
    [TestCase("stories260K_unk")]
    [TestCase("stories260K_metaspace_split")]
    [TestCase("qwen3")]
    public void AnyTextEncodesAndDecodesWithoutException(string variant)
    {
        var t = TokenizerFixtures.Tokenizer(variant);
        Run(TextWithLoneSurrogates, 0x7E57_0004UL, text =>
        {
            int[] ids = t.Encode(text);
            _ = t.Decode(ids);
            _ = t.Decode(ids, skipSpecialTokens: true);
            var stream = t.CreateStreamingDecoder();
            foreach (int id in ids) stream.Append(id);
        });
    }
}
