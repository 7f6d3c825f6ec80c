using System.Text.Json;
using LoRA.Managed.IO;

namespace LoRA.Managed.Lora;

/// <summary>
/// Reading <c>adapter_config.json</c>'s fields one by one: typed getters that name the field in every error, PEFT's
/// special forms (a regular-expression <c>target_modules</c>, <c>pissa_niter_K</c>, <c>loftq_config</c>, pattern
/// objects, layer indices) and the fields refused when set.
/// </summary>
public static partial class AdapterConfigFile
{
    /// <summary>A number that fits a finite double, or null when absent or null. <c>1e400</c> is refused, not read as
    /// ∞.</summary>
    private static double? FiniteNumber(JsonElement root, string name, string source)
    {
        if (Get(root, name, source, JsonValueKind.Number) is not { } el) return null;
        if (!el.TryGetDouble(out double v) || !double.IsFinite(v))
            throw new InvalidDataFormatException(source, name, $"{StrictJson.Snippet(el)} is not a finite number.");
        return v;
    }

    /// <summary>A string from the file, cut for an error message.</summary>
    private static string Cut(string s) => s.Length <= 40 ? s : s[..40] + "…";

    private static bool IsLoftQ(JsonElement root) =>
        root.TryGetProperty("init_lora_weights", out var el) && el.ValueKind == JsonValueKind.String
            && el.GetString() == "loftq";

    /// <summary>PEFT's <c>loftq_config</c> ({"loftq_bits": 4, "loftq_iter": n}) for a LoftQ adapter: the number of
    /// iterations; bits other than 4 are refused naming the field.</summary>
    private static int ReadLoftQIterations(JsonElement root, string source)
    {
        if (!root.TryGetProperty("loftq_config", out var cfg) || cfg.ValueKind != JsonValueKind.Object
            || !cfg.EnumerateObject().Any())
            throw new InvalidDataFormatException(source, "loftq_config",
                "init_lora_weights \"loftq\" needs a loftq_config object.");
        int bits = 4, iterations = 1;
        foreach (var p in cfg.EnumerateObject())
        {
            int value = p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt32(out int v) ? v
                : throw new InvalidDataFormatException(source, "loftq_config",
                    $"{p.Name} is {StrictJson.Snippet(p.Value)}, not an integer.");
            switch (p.Name)
            {
                case "loftq_bits": bits = value; break;
                case "loftq_iter": iterations = value; break;
                default: throw new InvalidDataFormatException(source, "loftq_config",
                    $"'{Cut(p.Name)}' is not supported here.");
            }
        }
        if (bits != 4)
            throw new InvalidDataFormatException(source, "loftq_config",
                $"loftq_bits {bits} is not supported (only 4, NF4).");
        if (iterations < 1)
            throw new InvalidDataFormatException(source, "loftq_config",
                $"loftq_iter {iterations} must be at least 1.");
        return iterations;
    }

    private static int? PissaIterations(string s) =>
        s.StartsWith("pissa_niter_", StringComparison.Ordinal)
        && int.TryParse(s.AsSpan("pissa_niter_".Length), System.Globalization.NumberStyles.None, null, out int niter)
        && niter >= 1
            ? niter : null;

    /// <summary><c>init_lora_weights</c>, read once: the initialisation and, for PEFT's fast PiSSA
    /// (<c>"pissa_niter_&lt;n&gt;"</c>, n ≥ 1 power iterations of a randomized SVD), n.</summary>
    private static (LoraInit Init, int? PissaIterations) ReadInit(JsonElement root, string source)
    {
        if (!root.TryGetProperty("init_lora_weights", out var el)) return (LoraInit.Default, null);
        return el.ValueKind switch
        {
            // false asks PEFT for random non-zero factors (a testing aid); the loaded weights replace them anyway.
            JsonValueKind.True or JsonValueKind.False => (LoraInit.Default, null),
            JsonValueKind.String => el.GetString()! switch
            {
                "gaussian" => (LoraInit.Gaussian, null),
                "pissa" => (LoraInit.Pissa, null),
                "olora" => (LoraInit.Olora, null),
                "loftq" => (LoraInit.LoftQ, null),
                var s when PissaIterations(s) is int niter => (LoraInit.Pissa, niter),
                var s => throw new InvalidDataFormatException(source, "init_lora_weights",
                    $"'{Cut(s)}' is not supported (true, false, \"gaussian\", \"pissa\", " +
                    "\"pissa_niter_<n>\", \"olora\", \"loftq\")."),
            },
            _ => throw new InvalidDataFormatException(source, "init_lora_weights",
                $"expected a boolean or string, found {el.ValueKind}."),
        };
    }

    private static JsonElement? Get(JsonElement root, string name, string source, JsonValueKind kind)
    {
        if (!root.TryGetProperty(name, out var el) || el.ValueKind == JsonValueKind.Null) return null;
        if (el.ValueKind != kind)
            throw new InvalidDataFormatException(source, name, $"expected {kind}, found {el.ValueKind}.");
        return el;
    }

    private static string? String(JsonElement root, string name, string source, bool required)
    {
        var el = Get(root, name, source, JsonValueKind.String);
        if (el is null && required) throw new InvalidDataFormatException(source, name, "missing.");
        return el?.GetString();
    }

    private static bool Bool(JsonElement root, string name, string source)
    {
        if (!root.TryGetProperty(name, out var el) || el.ValueKind == JsonValueKind.Null) return false;
        return el.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new InvalidDataFormatException(source, name, $"expected a boolean, found {el.ValueKind}."),
        };
    }

    /// <summary>
    /// PEFT <c>LoraConfig</c> fields that change which modules are adapted, with what rank or scale, or how: set to
    /// anything but their default they would change the adapter's outputs, so a file that sets one is refused by
    /// name rather than loaded wrong. Fields that only affect PEFT's runtime (<c>runtime_config</c>,
    /// <c>megatron_core</c>, <c>qalora_group_size</c> without <c>use_qalora</c>) are accepted as they are.
    /// </summary>
    private static readonly string[] UnsupportedFields =
    [
        "megatron_config", "trainable_token_indices", "loftq_config", "eva_config", "corda_config", "use_qalora",
        "layer_replication", "lora_bias", "target_parameters", "ensure_weight_tying", "alora_invocation_tokens",
        "arrow_config",
    ];

    /// <summary>Throws, naming the field, when one of <see cref="UnsupportedFields"/> holds a non-default value
    /// (anything but absent, null, false, {} or []).</summary>
    private static void RefuseUnsupported(JsonElement root, string source)
    {
        foreach (string name in UnsupportedFields)
        {
            if (!root.TryGetProperty(name, out var el)) continue;
            if (name == "loftq_config" && IsLoftQ(root)) continue;   // read by ReadLoftQIterations
            bool isDefault = el.ValueKind switch
            {
                JsonValueKind.Null or JsonValueKind.False => true,
                JsonValueKind.Object => !el.EnumerateObject().Any(),
                JsonValueKind.Array => el.GetArrayLength() == 0,
                _ => false,
            };
            if (!isDefault)
                throw new InvalidDataFormatException(source, name,
                    $"{StrictJson.Snippet(el)} is not supported here (only its default is); the adapter would load " +
                    "with the wrong modules, rank or scale.");
        }
    }

    /// <summary>A <c>rank_pattern</c>/<c>alpha_pattern</c> object: string keys to finite numbers, in file order (PEFT
    /// takes the first matching key). Absent or null: empty.</summary>
    private static List<KeyValuePair<string, double>> Pattern(JsonElement root, string name, string source)
    {
        var list = new List<KeyValuePair<string, double>>();
        if (!root.TryGetProperty(name, out var el) || el.ValueKind == JsonValueKind.Null) return list;
        if (el.ValueKind != JsonValueKind.Object)
            throw new InvalidDataFormatException(source, name, $"expected an object, found {el.ValueKind}.");
        foreach (var prop in el.EnumerateObject())
        {
            if (prop.Name.Length == 0) throw new InvalidDataFormatException(source, name, "a key is empty.");
            if (list.Any(p => p.Key == prop.Name))
                throw new InvalidDataFormatException(source, name, $"key '{Cut(prop.Name)}' appears twice.");
            if (prop.Value.ValueKind != JsonValueKind.Number || !prop.Value.TryGetDouble(out double v)
                || !double.IsFinite(v))
                throw new InvalidDataFormatException(source, name,
                    $"'{Cut(prop.Name)}': {StrictJson.Snippet(prop.Value)} is not a finite number.");
            list.Add(KeyValuePair.Create(prop.Name, v));
        }
        return list;
    }

    /// <summary><c>layers_to_transform</c>: null, one index, or a list of indices (each an integer ≥ 0).</summary>
    private static List<int> LayerIndices(JsonElement root, string source)
    {
        var list = new List<int>();
        if (!root.TryGetProperty("layers_to_transform", out var el) || el.ValueKind == JsonValueKind.Null) return list;
        IEnumerable<JsonElement> items = el.ValueKind == JsonValueKind.Array ? el.EnumerateArray() : [el];
        foreach (var item in items)
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out int i) || i < 0)
                throw new InvalidDataFormatException(source, "layers_to_transform",
                    $"{StrictJson.Snippet(item)} is not a layer index (an integer ≥ 0).");
            list.Add(i);
        }
        return list;
    }

    /// <summary>A string field read as a regular expression (checked to compile), or null when absent or not a
    /// string.</summary>
    private static string? Regex(JsonElement root, string name, string source)
    {
        if (!root.TryGetProperty(name, out var el) || el.ValueKind != JsonValueKind.String) return null;
        string pattern = el.GetString()!;
        if (pattern.Length == 0) throw new InvalidDataFormatException(source, name, "is an empty string.");
        if (pattern != LoraConfig.AllLinear && TargetMatcher.PatternError(pattern) is { } error)
            throw new InvalidDataFormatException(source, name,
                $"'{Cut(pattern)}' is not a regular expression this engine reads: {error}");
        return pattern;
    }

    private static List<string>? List(JsonElement root, string name, string source)
    {
        if (!root.TryGetProperty(name, out var el) || el.ValueKind == JsonValueKind.Null) return null;
        if (el.ValueKind == JsonValueKind.String)
            throw new InvalidDataFormatException(source, name,
                "a single string is not supported here; give a list of module names.");
        if (el.ValueKind != JsonValueKind.Array)
            throw new InvalidDataFormatException(source, name, $"expected a list of strings, found {el.ValueKind}.");
        var list = new List<string>();
        foreach (var item in el.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
                throw new InvalidDataFormatException(source, name,
                    $"entry {StrictJson.Snippet(item)} is not a string.");
            string s = item.GetString()!;
            if (string.IsNullOrWhiteSpace(s))
                throw new InvalidDataFormatException(source, name, $"entry {list.Count} is an empty name.");
            list.Add(s);
        }
        return list;
    }
}
