using System.IO.Compression;
using System.Text;

namespace LoRA.Managed.Text;

/// <summary>How the shipped files become plain training text.</summary>
public static class CorpusText
{
    /// <summary>
    /// Joins fortune(6) data files: UTF-8 text in which a line holding only <c>%</c> separates entries. Separator
    /// lines become blank lines, and terminal overstriking (<c>c\bc</c>, <c>_\bc</c>, which fortune files use for bold
    /// and underline) is resolved to the final character; other control characters except newline and tab are dropped.
    /// </summary>
    public static string Fortunes(IReadOnlyList<byte[]> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        var sb = new StringBuilder();
        foreach (byte[] file in files)
        {
            string text = Encoding.UTF8.GetString(file).Replace("\r\n", "\n");
            foreach (string line in text.Split('\n'))
            {
                if (line == "%") { sb.Append('\n'); continue; }
                foreach (char ch in line)
                {
                    if (ch == '\b') { if (sb.Length > 0 && sb[^1] != '\n') sb.Length--; }
                    else if (ch == '\t' || ch >= ' ') sb.Append(ch);
                }
                sb.Append('\n');
            }
        }
        return sb.ToString();
    }

    /// <summary>
    /// The text of a dictd database (<c>.dict.dz</c>, gzip-compatible dictzip): decompressed, with everything before
    /// <paramref name="startMarker"/> (dictfmt's <c>00-database-*</c> headers and the e-text's banner) removed.
    /// </summary>
    /// <exception cref="InvalidDataException">The data is not gzip, or the marker is missing.</exception>
    public static string DictFromMarker(byte[] dictDz, string startMarker)
    {
        ArgumentNullException.ThrowIfNull(dictDz);
        using var input = new GZipStream(new MemoryStream(dictDz), CompressionMode.Decompress);
        using var reader = new StreamReader(input, Encoding.UTF8);
        string text = reader.ReadToEnd().Replace("\r\n", "\n");
        int start = text.IndexOf(startMarker, StringComparison.Ordinal);
        if (start < 0)
            throw new InvalidDataException("CorpusText: the dictionary text does not contain the expected " +
                $"start \"{startMarker}\".");
        return text[start..];
    }
}
