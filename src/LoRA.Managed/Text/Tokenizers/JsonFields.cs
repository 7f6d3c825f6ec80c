using System.Text.Json;
using LoRA.Managed.IO;

namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// Typed reads of tokenizer JSON members that turn every wrong type or missing key into one
/// <see cref="InvalidDataFormatException"/> naming the file and the JSON path (<c>model.merges[3]</c>).
/// </summary>
internal readonly struct JsonFields(string file)
{
    /// <summary>The file named in errors.</summary>
    public string File { get; } = file;

    public InvalidDataFormatException Error(string field, string problem, Exception? inner = null) =>
        new(File, field, problem, inner);

    public JsonElement Object(JsonElement element, string field)
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw Error(field, $"expected an object, found {Describe(element)}.");
        return element;
    }

    public JsonElement Array(JsonElement element, string field)
    {
        if (element.ValueKind != JsonValueKind.Array)
            throw Error(field, $"expected an array, found {Describe(element)}.");
        return element;
    }

    /// <summary>The member <paramref name="name"/> of <paramref name="obj"/>, or null when it is absent or JSON
    /// null.</summary>
    public static JsonElement? Member(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public JsonElement Required(JsonElement obj, string name, string path) =>
        Member(obj, name) ?? throw Error(Join(path, name), "missing.");

    public string String(JsonElement element, string field)
    {
        if (element.ValueKind != JsonValueKind.String)
            throw Error(field, $"expected a string, found {Describe(element)}.");
        return element.GetString()!;
    }

    public string RequiredString(JsonElement obj, string name, string path) =>
        String(Required(obj, name, path), Join(path, name));

    public string? OptionalString(JsonElement obj, string name, string path) =>
        Member(obj, name) is { } v ? String(v, Join(path, name)) : null;

    public bool Bool(JsonElement obj, string name, string path, bool defaultValue)
    {
        if (Member(obj, name) is not { } v) return defaultValue;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error(Join(path, name), $"expected true or false, found {Describe(v)}."),
        };
    }

    public int Int(JsonElement element, string field, int min = 0, int max = int.MaxValue)
    {
        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt32(out int value) || value < min
            || value > max)
            throw Error(field, $"expected an integer in [{min}, {max}], found {Describe(element)}.");
        return value;
    }

    public int OptionalInt(JsonElement obj, string name, string path, int defaultValue, int min = 0,
        int max = int.MaxValue) =>
        Member(obj, name) is { } v ? Int(v, Join(path, name), min, max) : defaultValue;

    /// <summary>The <c>type</c> of a component object (<c>"BPE"</c>, <c>"ByteLevel"</c>, ...).</summary>
    public string Type(JsonElement obj, string path) => RequiredString(Object(obj, path), "type", path);

    public InvalidDataFormatException Unsupported(string path, string what, string supported) =>
        Error(Join(path, "type"), $"{what} is not supported (supported: {supported}).");

    public static string Join(string path, string name) => path.Length == 0 ? name : $"{path}.{name}";

    public static string Describe(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.Null => "null",
        _ => StrictJson.Snippet(element),
    };
}
