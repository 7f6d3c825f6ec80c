namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// GPT-2's byte-to-character table (<c>bytes_to_unicode</c> in OpenAI's encoder.py, <c>ByteLevel</c> in
/// Hugging Face <c>tokenizers</c>): the 188 printable bytes <c>!</c>..<c>~</c>, <c>¡</c>..<c>¬</c>,
/// <c>®</c>..<c>ÿ</c> map to themselves and the other 68 to U+0100, U+0101, ... in byte order, so every
/// byte string becomes visible text that a BPE vocabulary can hold.
/// </summary>
internal static class ByteLevelAlphabet
{
    /// <summary>The character for each byte.</summary>
    public static readonly char[] ByteToChar = Build();

    /// <summary>The byte for each character of the alphabet, -1 for any other character (indexed by char up to
    /// U+0143).</summary>
    public static readonly short[] CharToByte = Inverse(ByteToChar);

    private static char[] Build()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = (char)(printable ? b : next++);
        }
        return map;
    }

    private static short[] Inverse(char[] map)
    {
        var inverse = new short[0x144];
        System.Array.Fill(inverse, (short)-1);
        for (int b = 0; b < 256; b++) inverse[map[b]] = (short)b;
        return inverse;
    }

    /// <summary>The byte of <paramref name="c"/>, or -1 when it is not in the alphabet.</summary>
    public static int ByteOf(char c) => c < CharToByte.Length ? CharToByte[c] : -1;
}
