using System.Text.Json;
using System.Text.Unicode;

namespace LoRA.Managed.IO;

/// <summary>
/// Parses untrusted JSON so that every problem becomes an <see cref="InvalidDataFormatException"/>:
/// System.Text.Json reports malformed text as <see cref="JsonException"/>, but an invalid UTF-8 sequence or
/// an escaped lone surrogate (<c>"\ud800"</c>) only fails later, as an <see cref="InvalidOperationException"/>
/// from <see cref="JsonElement.GetString"/> or <see cref="JsonProperty.Name"/>. Both are checked here, once,
/// so the callers can read every string of the returned document safely.
/// </summary>
internal static class StrictJson
{
    /// <summary>Parses <paramref name="utf8"/>; errors name <paramref name="file"/> and
    /// <paramref name="field"/>.</summary>
    /// <exception cref="InvalidDataFormatException">Not UTF-8, not well-formed JSON, nested deeper than
    /// <paramref name="maxDepth"/>, or a string escape that is not valid UTF-16.</exception>
    internal static JsonDocument Parse(ReadOnlyMemory<byte> utf8, string file, string field, int maxDepth)
    {
        // RFC 8259 §8.1: JSON exchanged between systems must be UTF-8.
        if (!Utf8.IsValid(utf8.Span))
            throw new InvalidDataFormatException(file, field,
                $"not valid UTF-8 (invalid byte sequence at byte {FirstInvalidUtf8(utf8.Span)}).");
        var options = new JsonReaderOptions { MaxDepth = maxDepth };
        var reader = new Utf8JsonReader(utf8.Span, options);
        try
        {
            while (reader.Read())
                if (reader.TokenType is JsonTokenType.PropertyName or JsonTokenType.String && reader.ValueIsEscaped)
                    reader.GetString();   // unescapes: throws for a lone surrogate
        }
        catch (JsonException ex)
        {
            throw new InvalidDataFormatException(file, field, $"not valid JSON ({ex.Message}).", ex);
        }
        catch (InvalidOperationException ex)
        {
            throw new InvalidDataFormatException(file, field,
                $"the string at byte {reader.TokenStartIndex} is not valid text ({ex.Message}).", ex);
        }
        try
        {
            return JsonDocument.Parse(utf8, new JsonDocumentOptions { MaxDepth = maxDepth });
        }
        catch (JsonException ex)
        {
            throw new InvalidDataFormatException(file, field, $"not valid JSON ({ex.Message}).", ex);
        }
    }

    /// <summary>A JSON value's text for an error message, cut to <paramref name="max"/> characters so a huge value
    /// cannot bloat it.</summary>
    internal static string Snippet(JsonElement element, int max = 40)
    {
        string text = element.GetRawText();
        return text.Length <= max ? text : text[..max] + "…";
    }

    private static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        int start = 0;
        Span<char> sink = stackalloc char[256];
        while (start < bytes.Length)
        {
            var status = Utf8.ToUtf16(bytes[start..], sink, out int read, out _, replaceInvalidSequences: false,
                isFinalBlock: true);
            if (status == System.Buffers.OperationStatus.InvalidData) return start + read;
            if (status == System.Buffers.OperationStatus.Done) return bytes.Length;
            start += read;
        }
        return bytes.Length;
    }
}
