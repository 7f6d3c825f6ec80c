using System.Text;
using System.Text.Json.Nodes;
using CsCheck;

namespace LoRA.Managed.Tests.Fuzz;

/// <summary>
/// One structural edit of a JSON document: nodes are addressed by their index in depth-first order (modulo
/// the count, so any drawn index picks some node). Values that a <see cref="JsonNode"/> cannot hold (1e400,
/// 100,000-deep nesting, lone surrogates, duplicate keys) are spliced in as raw text through placeholder
/// strings that <see cref="JsonEdits.Apply"/> replaces after serialising.
/// </summary>
internal abstract record JsonEdit
{
    public abstract void Apply(JsonEditor doc);
}

/// <summary>Replaces a node's value with one of <see cref="JsonEdits.Values"/> (type changes, huge numbers, edge
/// strings).</summary>
internal sealed record ReplaceValue(int Node, int Value) : JsonEdit
{
    public override void Apply(JsonEditor doc) =>
        doc.Set(doc.Slot(Node), doc.Raw(JsonEdits.Values[Value % JsonEdits.Values.Length]));
}

/// <summary>Adds a small delta to a number: off-by-one shapes and offsets.</summary>
internal sealed record NudgeNumber(int Node, int Delta) : JsonEdit
{
    public override void Apply(JsonEditor doc)
    {
        var numbers = doc.Slots()
            .Where(s => s.Node is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.Number).ToList();
        if (numbers.Count == 0) return;
        var slot = numbers[Node % numbers.Count];
        string text = slot.Node!.ToJsonString();
        string nudged = long.TryParse(text, out long l) ? (l + Delta).ToString()
            : (double.Parse(text, System.Globalization.CultureInfo.InvariantCulture) + Delta)
            .ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        doc.Set(slot, doc.Raw(nudged));
    }
}

/// <summary>Removes a key or array element (a missing field, a shorter shape).</summary>
internal sealed record RemoveNode(int Node) : JsonEdit
{
    public override void Apply(JsonEditor doc) => doc.Remove(doc.Slot(Node));
}

/// <summary>Adds a key (from <see cref="JsonEdits.Keys"/>) with a raw value to some object, or an element to some
/// array.</summary>
internal sealed record AddMember(int Node, int Key, int Value) : JsonEdit
{
    public override void Apply(JsonEditor doc)
    {
        var containers = doc.Slots().Where(s => s.Node is JsonObject or JsonArray).ToList();
        if (containers.Count == 0) return;
        var target = containers[Node % containers.Count].Node;
        JsonNode value = doc.Raw(JsonEdits.Values[Value % JsonEdits.Values.Length]);
        if (target is JsonArray array) { array.Add(value); return; }
        var obj = (JsonObject)target!;
        string key = JsonEdits.Keys[Key % JsonEdits.Keys.Length];
        obj[key] = value;
    }
}

/// <summary>Renames a key of some object.</summary>
internal sealed record RenameKey(int Node, int Key) : JsonEdit
{
    public override void Apply(JsonEditor doc)
    {
        var members = doc.Slots().Where(s => s.Parent is JsonObject).ToList();
        if (members.Count == 0) return;
        var slot = members[Node % members.Count];
        var obj = (JsonObject)slot.Parent!;
        string key = JsonEdits.Keys[Key % JsonEdits.Keys.Length];
        if (obj.ContainsKey(key)) return;
        var value = slot.Node;
        obj.Remove(slot.Key!);
        obj[key] = value;
    }
}

/// <summary>Swaps the values of two nodes (two tensors' offsets, a shape and a dtype, ...).</summary>
internal sealed record SwapNodes(int A, int B) : JsonEdit
{
    public override void Apply(JsonEditor doc)
    {
        var a = doc.Slot(A);
        var b = doc.Slot(B);
        if (a.Parent is null || b.Parent is null || ReferenceEquals(a.Node, b.Node)) return;
        JsonNode? ca = a.Node?.DeepClone(), cb = b.Node?.DeepClone();
        doc.Set(a, cb);
        doc.Set(b, ca);
    }
}

/// <summary>Wraps a node in <see cref="Depth"/> arrays or objects (deep nesting up to 100,000 levels).</summary>
internal sealed record Nest(int Node, int Depth, bool Objects) : JsonEdit
{
    public override void Apply(JsonEditor doc)
    {
        var slot = doc.Slot(Node);
        string inner = slot.Node?.ToJsonString() ?? "null";
        var sb = new StringBuilder();
        for (int i = 0; i < Depth; i++) sb.Append(Objects ? "{\"a\":" : "[");
        sb.Append(inner);
        for (int i = 0; i < Depth; i++) sb.Append(Objects ? '}' : ']');
        doc.Set(slot, doc.Raw(sb.ToString()));
    }
}

/// <summary>Repeats a key of some object with another value: a duplicate key (System.Text.Json and Python differ on
/// which wins).</summary>
internal sealed record DuplicateKey(int Node, int Value) : JsonEdit
{
    public override void Apply(JsonEditor doc)
    {
        var members = doc.Slots().Where(s => s.Parent is JsonObject).ToList();
        if (members.Count == 0) return;
        var slot = members[Node % members.Count];
        string marker = doc.Marker(System.Text.Json.JsonSerializer.Serialize(slot.Key));
        ((JsonObject)slot.Parent!)[marker] = doc.Raw(JsonEdits.Values[Value % JsonEdits.Values.Length]);
    }
}

/// <summary>A parsed document under edit, with the raw-text placeholders it has handed out.</summary>
internal sealed class JsonEditor(JsonNode root)
{
    private readonly Dictionary<string, string> _raw = new();

    public JsonNode? Root { get; private set; } = root;

    /// <summary>A node's place: its parent and key or index (the root has no parent).</summary>
    public readonly record struct Place(JsonNode? Parent, string? Key, int Index, JsonNode? Node);

    public List<Place> Slots()
    {
        var list = new List<Place>();
        void Walk(JsonNode? parent, string? key, int index, JsonNode? node)
        {
            list.Add(new Place(parent, key, index, node));
            if (node is JsonObject o) foreach (var (k, v) in o.ToList()) Walk(o, k, -1, v);
            else if (node is JsonArray a) for (int i = 0; i < a.Count; i++) Walk(a, null, i, a[i]);
        }
        Walk(null, null, -1, Root);
        return list;
    }

    public Place Slot(int drawn)
    {
        var slots = Slots();
        return slots[drawn % slots.Count];
    }

    public void Set(Place place, JsonNode? value)
    {
        value = value?.Parent is null ? value : value.DeepClone();
        switch (place.Parent)
        {
            case null: Root = value; break;
            case JsonObject o: o[place.Key!] = value; break;
            case JsonArray a: a[place.Index] = value; break;
        }
    }

    public void Remove(Place place)
    {
        switch (place.Parent)
        {
            case null: Root = Raw(""); break;
            case JsonObject o: o.Remove(place.Key!); break;
            case JsonArray a: a.RemoveAt(place.Index); break;
        }
    }

    /// <summary>A placeholder string value that serialises as the raw JSON text <paramref name="json"/>.</summary>
    public JsonNode Raw(string json) => JsonValue.Create(Marker(json))!;

    /// <summary>A placeholder string whose quoted form is replaced by <paramref name="text"/> after
    /// serialising.</summary>
    public string Marker(string text)
    {
        string marker = $"QQRAW{_raw.Count}QQ";
        _raw[marker] = text;
        return marker;
    }

    public byte[] ToUtf8()
    {
        string json = Root?.ToJsonString() ?? "null";
        // Later markers can sit inside earlier ones' text (a nested edit), so replace newest first.
        foreach (var (marker, text) in _raw.Reverse())
            json = json.Replace($"\"{marker}\"", text, StringComparison.Ordinal);
        return Encoding.UTF8.GetBytes(json);
    }
}

internal static class JsonEdits
{
    /// <summary>Raw JSON replacement values: every type, numbers at the edges of int/long/ulong/double, the dtype and
    /// enum names, hostile strings.</summary>
    public static readonly string[] Values =
    [
        "\"F32\"", "\"F16\"", "\"BF16\"", "\"F64\"", "\"I64\"", "\"U8\"", "\"BOOL\"", "\"F8_E4M3\"", "\"f32\"", "\"\"",
        "\" \"", "\"LORA\"", "\"IA3\"", "\"none\"", "\"all\"", "\"lora_only\"", "\"gaussian\"", "\"pissa\"",
        "\"pissa_niter_4\"", "\"pissa_niter_\"",
        "\"pissa_niter_-1\"", "\"olora\"", "\"layers.5\"", "\"*\"", "\"pt\"",
        "\"\\ud800\"", "\"x\\udc00\"", "\"\\ud800\\ud800\"", "\"\\u0000\"", "\"" + new string('a', 100_000) + "\"",
        "0", "1", "-1", "2", "4", "8", "255", "256", "2147483647", "2147483648", "-2147483649", "4294967296",
        "9007199254740993", "9223372036854775807", "9223372036854775808", "18446744073709551616",
        "-9223372036854775809", "1e400", "-1e400", "1e-400", "1.5", "-0", "4.0", "1E2", "0.9999999999999999", "0.5",
        "100000000000000000000000000000", "true", "false", "null", "[]", "{}", "[0]", "[1]", "[1,2]", "[0,0]", "[0,4]",
        "[4,0]", "[-1]", "[2147483647,2147483647]", "[65536,65536]", "[0,9223372036854775807]", "[0,4294967296]",
        "[\"a\"]", "[null]", "{\"a\":1}", "[[1]]", "[1,2,3,4,5]",
        "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", "{\"format\":\"pt\"}", "{\"format\":1}",
    ];

    /// <summary>Keys to add or rename to: the formats' own names (so a key moves or repeats), near misses, empty and
    /// hostile ones.</summary>
    public static readonly string[] Keys =
    [
        "__metadata__", "dtype", "shape", "data_offsets", "format", "w", "a", "",
        "r", "lora_alpha", "lora_dropout", "target_modules", "peft_type", "bias", "use_dora", "use_rslora",
        "fan_in_fan_out",
        "init_lora_weights", "modules_to_save", "R", "peft_type ", "é", new string('k', 1000),
    ];

    public static Gen<JsonEdit> Any()
    {
        var node = Gen.Int[0, int.MaxValue];
        var value = Gen.Int[0, Values.Length - 1];
        var key = Gen.Int[0, Keys.Length - 1];
        var depth = Gen.OneOf(Gen.Const(1), Gen.Const(7), Gen.Const(8), Gen.Const(9), Gen.Const(15), Gen.Const(16),
            Gen.Const(17),
            Gen.Const(64), Gen.Const(65), Gen.Const(1000), Gen.Const(100_000));
        return Gen.Frequency(
            (6, Gen.Select(node, value, (n, v) => (JsonEdit)new ReplaceValue(n, v))),
            (4, Gen.Select(node, Gen.Int[-9, 9], (n, d) => (JsonEdit)new NudgeNumber(n, d))),
            (3, node.Select(n => (JsonEdit)new RemoveNode(n))),
            (2, Gen.Select(node, key, value, (n, k, v) => (JsonEdit)new AddMember(n, k, v))),
            (2, Gen.Select(node, key, (n, k) => (JsonEdit)new RenameKey(n, k))),
            (2, Gen.Select(node, node, (a, b) => (JsonEdit)new SwapNodes(a, b))),
            (1, Gen.Select(node, depth, Gen.Bool, (n, d, o) => (JsonEdit)new Nest(n, d, o))),
            (1, Gen.Select(node, value, (n, v) => (JsonEdit)new DuplicateKey(n, v))));
    }

    /// <summary>Applies <paramref name="edits"/> in order to the valid document <paramref name="json"/>.</summary>
    public static byte[] Apply(byte[] json, IEnumerable<JsonEdit> edits)
    {
        var doc = new JsonEditor(JsonNode.Parse(json)!);
        foreach (var edit in edits) edit.Apply(doc);
        return doc.ToUtf8();
    }
}
