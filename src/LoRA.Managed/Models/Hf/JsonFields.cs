using System.Text.Json;
using LoRA.Managed.IO;

namespace LoRA.Managed.Models.Hf;

/// <summary>
/// Typed reads of a Hugging Face JSON file's top-level fields, each failure an <see cref="InvalidDataFormatException"/>
/// naming the file and the field. A field that is absent or <c>null</c> takes the given default, as
/// <c>PretrainedConfig</c> does.
/// </summary>
internal sealed class JsonFields
{
    private readonly JsonElement _root;

    public JsonFields(JsonElement root, string file)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw new InvalidDataFormatException(file, "json", $"expected an object, found {root.ValueKind}.");
        _root = root;
        File = file;
    }

    /// <summary>The file's path, for messages.</summary>
    public string File { get; }

    /// <summary>Reads and parses <paramref name="path"/> (at most 16 MB).</summary>
    public static JsonDocument Parse(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"{path}: the file does not exist.", path);
        if (info.Length > 16 << 20)
            throw new InvalidDataFormatException(path, "json",
                $"{info.Length:N0} bytes is too large for a config file.");
        return StrictJson.Parse(System.IO.File.ReadAllBytes(path), path, "json", 64);
    }

    public bool Has(string name) => _root.TryGetProperty(name, out var el) && el.ValueKind != JsonValueKind.Null;

    public JsonElement? Element(string name) =>
        _root.TryGetProperty(name, out var el) && el.ValueKind != JsonValueKind.Null ? el : null;

    public InvalidDataFormatException Bad(string field, string problem) => new(File, field, problem);

    public string? String(string name)
    {
        if (Element(name) is not { } el) return null;
        return el.ValueKind == JsonValueKind.String ? el.GetString()
            : throw Bad(name, $"expected a string, found {el.ValueKind}.");
    }

    public int? Int(string name, int min = int.MinValue)
    {
        if (Element(name) is not { } el) return null;
        if (el.ValueKind != JsonValueKind.Number || !el.TryGetInt32(out int v) || v < min)
            throw Bad(name, $"{StrictJson.Snippet(el)} is not an integer ≥ {min}.");
        return v;
    }

    /// <summary>The first present field among <paramref name="names"/> (HF's attribute aliases), else null.</summary>
    public int? Int(string[] names, int min)
    {
        foreach (string n in names) if (Has(n)) return Int(n, min);
        return null;
    }

    public int RequiredInt(string[] names, int min) =>
        Int(names, min)
            ?? throw Bad(names[0],
                "missing" + (names.Length > 1 ? $" (also looked for {string.Join(", ", names.Skip(1))})" : "") + ".");

    public double? Number(string name)
    {
        if (Element(name) is not { } el) return null;
        if (el.ValueKind != JsonValueKind.Number || !el.TryGetDouble(out double v) || !double.IsFinite(v))
            throw Bad(name, $"{StrictJson.Snippet(el)} is not a finite number.");
        return v;
    }

    public bool? Bool(string name)
    {
        if (Element(name) is not { } el) return null;
        return el.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Bad(name, $"expected a boolean, found {el.ValueKind}."),
        };
    }

    /// <summary>An integer or a list of integers (<c>eos_token_id</c> may be either); empty when absent.</summary>
    public int[] IntOrList(string name)
    {
        if (Element(name) is not { } el) return [];
        if (el.ValueKind == JsonValueKind.Number) return [Int(name, 0)!.Value];
        if (el.ValueKind != JsonValueKind.Array)
            throw Bad(name, $"expected an integer or a list of integers, found {el.ValueKind}.");
        var list = new List<int>();
        foreach (var item in el.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out int v) || v < 0)
                throw Bad(name, $"entry {StrictJson.Snippet(item)} is not a non-negative integer.");
            list.Add(v);
        }
        return list.ToArray();
    }
}
