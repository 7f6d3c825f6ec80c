using System.Text.Json;

using LoRA.Managed.IO;

namespace LoRA.Managed.Lora;

/// <summary>
/// PEFT's <c>adapter_config.json</c> for a LoRA adapter, with PEFT's field names.
/// </summary>
/// <remarks>
/// PEFT knows only the scales α/r and α/√r (<c>use_rslora</c>), so <c>lora_alpha</c> is written as whatever
/// makes PEFT's scale equal the scale trained with: α·r for <see cref="LoraScaling.Alpha"/> (the blog's
/// scale α = 1 at r = 4 gives <c>lora_alpha = 4</c>), α otherwise. Reading therefore yields
/// <see cref="LoraScaling.AlphaOverRank"/> or <see cref="LoraScaling.RsLora"/> with the same scale.
/// <c>init_lora_weights</c>: <c>true</c> for Default and for the blog's SVD (the factors are in the weights file
/// and the base is unchanged, so PEFT must only build zero-effect factors and then load them over), <c>"gaussian"</c>,
/// <c>"pissa"</c> (PEFT then rebuilds the residual base from the original model, as
/// <see cref="PeftModel.FromPretrained"/> does).
/// </remarks>
public static partial class AdapterConfigFile
{
    /// <summary>The file name PEFT uses.</summary>
    public const string FileName = "adapter_config.json";

    /// <summary>The <c>lora_alpha</c> PEFT needs to reproduce <paramref name="config"/>'s scale.</summary>
    public static double PeftLoraAlpha(LoraConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config.Scaling == LoraScaling.Alpha ? config.Alpha * config.Rank : config.Alpha;
    }

    /// <summary>The JSON text (indented, keys sorted as PEFT's <c>json.dumps(..., sort_keys=True)</c>).</summary>
    public static string ToJson(LoraConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        // PEFT scales by alpha/r per module. The blog's rule (scale = alpha) is written as lora_alpha = alpha·r, which
        // a pattern key matching modules of different ranks cannot express.
        if (config.Scaling == LoraScaling.Alpha && (config.RankPattern.Count > 0 || config.AlphaPattern.Count > 0))
            throw new ArgumentException("AdapterConfigFile: rank_pattern/alpha_pattern with the blog's " +
                "scaling (scale = alpha) " +
                "have no PEFT equivalent; use LoraScaling.AlphaOverRank or RsLora with patterns.");
        var fields = new SortedDictionary<string, Action<Utf8JsonWriter>>(StringComparer.Ordinal)
        {
            ["alpha_pattern"] = w =>
                WritePattern(w, config.AlphaPattern.Select(p => KeyValuePair.Create(p.Key, p.Value))),
            ["base_model_name_or_path"] = w => WriteStringOrNull(w, config.BaseModelNameOrPath),
            ["bias"] = w =>
                w.WriteStringValue(config.Bias switch { LoraBias.All => "all", LoraBias.LoraOnly => "lora_only",
                    _ => "none" }),
            ["fan_in_fan_out"] = w => w.WriteBooleanValue(config.FanInFanOut),
            ["inference_mode"] = w => w.WriteBooleanValue(true),
            ["init_lora_weights"] = w =>
            {
                switch (config.Init)
                {
                    case LoraInit.Gaussian: w.WriteStringValue("gaussian"); break;
                    case LoraInit.Pissa: w.WriteStringValue(config.PissaIterations is int k ? $"pissa_niter_{k}"
                        : "pissa"); break;
                    case LoraInit.Olora: w.WriteStringValue("olora"); break;
                    case LoraInit.LoftQ: w.WriteStringValue("loftq"); break;
                    default: w.WriteBooleanValue(true); break;
                }
            },
            ["loftq_config"] = w =>
            {
                w.WriteStartObject();   // PEFT writes {} unless init_lora_weights is "loftq"
                if (config.Init == LoraInit.LoftQ)
                {
                    w.WriteNumber("loftq_bits", config.LoftQBits);
                    w.WriteNumber("loftq_iter", config.LoftQIterations);
                }
                w.WriteEndObject();
            },
            ["layers_pattern"] = w =>
            {
                if (config.LayersPattern.Count == 1) w.WriteStringValue(config.LayersPattern[0]);
                else WriteList(w, config.LayersPattern, nullWhenEmpty: true);
            },
            ["layers_to_transform"] = w =>
            {
                if (config.LayersToTransform.Count == 0) { w.WriteNullValue(); return; }
                w.WriteStartArray();
                foreach (int i in config.LayersToTransform) w.WriteNumberValue(i);
                w.WriteEndArray();
            },
            ["lora_alpha"] = w => w.WriteNumberValue(PeftLoraAlpha(config)),
            ["lora_dropout"] = w => w.WriteNumberValue((double)(decimal)config.Dropout),
            ["modules_to_save"] = w => WriteList(w, config.ModulesToSave, nullWhenEmpty: true),
            ["peft_type"] = w => w.WriteStringValue("LORA"),
            ["r"] = w => w.WriteNumberValue(config.Rank),
            ["rank_pattern"] = w =>
                WritePattern(w, config.RankPattern.Select(p => KeyValuePair.Create(p.Key, (double)p.Value))),
            ["revision"] = w => w.WriteNullValue(),
            ["target_modules"] = w =>
            {
                if (config.TargetModulesRegex is { } regex) w.WriteStringValue(regex);
                else if (config.TargetModules is [LoraConfig.AllLinear]) w.WriteStringValue(LoraConfig.AllLinear);
                else WriteList(w, config.TargetModules, nullWhenEmpty: false);
            },
            ["exclude_modules"] = w =>
            {
                if (config.ExcludeModulesRegex is { } regex) w.WriteStringValue(regex);
                else WriteList(w, config.ExcludeModules, nullWhenEmpty: true);
            },
            ["task_type"] = w => WriteStringOrNull(w, config.TaskType),
            ["use_dora"] = w => w.WriteBooleanValue(config.UseDora),
            ["use_rslora"] = w => w.WriteBooleanValue(config.Scaling == LoraScaling.RsLora),
        };
        var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            foreach (var (name, write) in fields)
            {
                w.WritePropertyName(name);
                write(w);
            }
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>Writes <c>adapter_config.json</c> to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, LoraConfig config)
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(ToJson(config));
        AtomicFile.Write(path, s => s.Write(bytes));
    }

    /// <summary>The largest <c>adapter_config.json</c> accepted. PEFT writes about 1 KB; even a per-layer
    /// <c>rank_pattern</c> for thousands of layers stays far below this.</summary>
    public const long MaxFileBytes = 16 << 20;

    /// <summary>A PEFT config nests at most three levels (root, <c>rank_pattern</c>, a value); deeper is
    /// refused.</summary>
    private const int MaxDepth = 16;

    /// <summary>Reads and validates the file at <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataFormatException">The file is larger than <see cref="MaxFileBytes"/>, not UTF-8 JSON,
    /// or a field is missing, of the wrong type, out of range, or asks for a feature not implemented here (other
    /// inits); the message names the file and the field.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static LoraConfig Read(string path) => Parse(ReadBytes(path), path);

    /// <summary>The file's bytes, refused before reading when it is not a regular file or larger than
    /// <see cref="MaxFileBytes"/>.</summary>
    internal static byte[] ReadBytes(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var file = InputFile.OpenRead(path);
        if (file.Length > MaxFileBytes)
            throw new InvalidDataFormatException(path, "json",
                $"{file.Length:N0} bytes is more than the {MaxFileBytes:N0}-byte limit for an adapter config.");
        var bytes = new byte[file.Length];
        file.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>Parses the JSON <paramref name="json"/>; <paramref name="source"/> names it in errors.</summary>
    /// <remarks>
    /// Strict where PEFT's own loader would silently misread: every key may appear once, <c>r</c> must be an integer ≥
    /// 1, <c>lora_alpha</c> a finite number, <c>lora_dropout</c> a number in [0, 1), <c>bias</c> one of PEFT's three
    /// names, <c>target_modules</c> a non-empty list of non-empty strings, <c>modules_to_save</c> null or such a list.
    /// Keys this library does not use are ignored, as PEFT ignores keys of newer versions.
    /// </remarks>
    /// <exception cref="InvalidDataFormatException">As <see cref="Read"/>.</exception>
    public static LoraConfig Parse(byte[] json, string source)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(source);
        if (json.LongLength > MaxFileBytes)
            throw new InvalidDataFormatException(source, "json",
                $"{json.LongLength:N0} bytes is more than the {MaxFileBytes:N0}-byte limit for an adapter config.");
        using JsonDocument doc = StrictJson.Parse(json, source, "json", MaxDepth);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw new InvalidDataFormatException(source, "json", $"expected an object, found {root.ValueKind}.");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var prop in root.EnumerateObject())
            if (!seen.Add(prop.Name))
                throw prop.Name.Length == 0
                    ? new InvalidDataFormatException(source, "json",
                        "the empty key appears twice; the value meant is ambiguous.")
                    : new InvalidDataFormatException(source, prop.Name, "appears twice; the value meant is ambiguous.");

        string peftType = String(root, "peft_type", source, required: true)!;
        if (peftType != "LORA")
            throw new InvalidDataFormatException(source, "peft_type", $"'{Cut(peftType)}' is not LORA.");
        RefuseUnsupported(root, source);
        // fan_in_fan_out is a per-layer fact here (Linear.FanInFanOut), as PEFT corrects the flag for each target; it
        // is kept.
        bool fanInFanOut = Bool(root, "fan_in_fan_out", source);
        int r = Get(root, "r", source, JsonValueKind.Number) is { } rEl && rEl.TryGetInt32(out int rv) && rv >= 1
            ? rv : throw new InvalidDataFormatException(source, "r", "missing or not an integer from 1 to 2147483647.");
        double alpha = FiniteNumber(root, "lora_alpha", source) ?? 8;
        // The scale α/r or α/√r is used as a float32: 1e308 is a finite double but an infinite scale (merge would write
        // ∞).
        double scale = Bool(root, "use_rslora", source) ? alpha / Math.Sqrt(r) : alpha / r;
        if (!float.IsFinite((float)scale))
            throw new InvalidDataFormatException(source, "lora_alpha",
                $"{alpha.ToString("R", System.Globalization.CultureInfo.InvariantCulture)} gives the scale " +
                $"{scale.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}, which is " +
                "infinite as a float32.");
        double dropout = FiniteNumber(root, "lora_dropout", source) ?? 0;
        // Checked after the conversion to float that LoraConfig stores: 0.9999999999999999 < 1 as a double rounds
        // to 1f.
        if (!((float)dropout >= 0f && (float)dropout < 1f))
            throw new InvalidDataFormatException(source, "lora_dropout",
                $"{dropout.ToString("R", System.Globalization.CultureInfo.InvariantCulture)} is not in " +
                "[0, 1) as a float32.");
        LoraBias bias = (String(root, "bias", source, required: false) ?? "none") switch
        {
            "none" => LoraBias.None,
            "all" => LoraBias.All,
            "lora_only" => LoraBias.LoraOnly,
            var other =>
                throw new InvalidDataFormatException(source, "bias", $"'{Cut(other)}' is not none, all or lora_only."),
        };
        // A string is "all-linear" or PEFT's regular-expression form (re.fullmatch against each module's name).
        string? targetsRegex = Regex(root, "target_modules", source);
        var targets = targetsRegex == LoraConfig.AllLinear ? [LoraConfig.AllLinear]
            : targetsRegex is not null ? new List<string>()
            : List(root, "target_modules", source)
            ?? throw new InvalidDataFormatException(source, "target_modules", "missing or null.");
        if (targetsRegex == LoraConfig.AllLinear) targetsRegex = null;
        string? excludeRegex = Regex(root, "exclude_modules", source);
        var exclude = excludeRegex is not null ? new List<string>() : List(root, "exclude_modules", source)
            ?? new List<string>();
        var layers = LayerIndices(root, source);
        var layersPattern = root.TryGetProperty("layers_pattern", out var lp) && lp.ValueKind == JsonValueKind.String
            ? (lp.GetString() is { Length: > 0 } one ? [one]
                : throw new InvalidDataFormatException(source, "layers_pattern", "is empty."))
            : List(root, "layers_pattern", source) ?? new List<string>();
        if (targets.Count == 0 && targetsRegex is null)
            throw new InvalidDataFormatException(source, "target_modules", "is empty.");
        var modulesToSave = List(root, "modules_to_save", source) ?? new List<string>();
        bool rs = Bool(root, "use_rslora", source);
        var rankPattern = Pattern(root, "rank_pattern", source)
            .Select(p => p.Value is >= 1 and <= int.MaxValue && p.Value == Math.Floor(p.Value)
                ? KeyValuePair.Create(p.Key, (int)p.Value)
                : throw new InvalidDataFormatException(source, "rank_pattern",
                    $"'{Cut(p.Key)}': {p.Value} is not an integer rank of at least 1."))
            .ToList();
        var alphaPattern = Pattern(root, "alpha_pattern", source);
        foreach (var (key, value) in alphaPattern)
            if (!float.IsFinite((float)value))
                throw new InvalidDataFormatException(source, "alpha_pattern",
                    $"'{Cut(key)}': {value} is infinite as a float32.");
        foreach (var (field, keys) in new[] { ("rank_pattern", rankPattern.Select(p => p.Key)),
            ("alpha_pattern", alphaPattern.Select(p => p.Key)) })
            foreach (string key in keys)
                if (TargetMatcher.PatternError(key) is { } error)
                    throw new InvalidDataFormatException(source, field,
                        $"key '{Cut(key)}' is not a regular expression ({error}).");
        var (init, pissaIterations) = ReadInit(root, source);
        return new LoraConfig
        {
            RankPattern = rankPattern,
            ExcludeModules = exclude,
            ExcludeModulesRegex = excludeRegex,
            LayersToTransform = layers,
            LayersPattern = layers.Count > 0 ? layersPattern : new List<string>(),
            AlphaPattern = alphaPattern,
            Rank = r,
            Alpha = alpha,
            Dropout = (float)dropout,   // in range, checked above
            Bias = bias,
            TargetModules = targets,
            TargetModulesRegex = targetsRegex,
            ModulesToSave = modulesToSave,
            Init = init,
            PissaIterations = pissaIterations,
            LoftQIterations = init == LoraInit.LoftQ ? ReadLoftQIterations(root, source) : 1,
            Scaling = rs ? LoraScaling.RsLora : LoraScaling.AlphaOverRank,
            FanInFanOut = fanInFanOut,
            UseDora = Bool(root, "use_dora", source),
            TaskType = String(root, "task_type", source, required: false),
            BaseModelNameOrPath = String(root, "base_model_name_or_path", source, required: false),
        };
    }

    private static void WritePattern(Utf8JsonWriter w, IEnumerable<KeyValuePair<string, double>> pattern)
    {
        w.WriteStartObject();
        foreach (var (key, value) in pattern) w.WriteNumber(key, value);
        w.WriteEndObject();
    }

    private static void WriteStringOrNull(Utf8JsonWriter w, string? value)
    {
        if (value is null) w.WriteNullValue(); else w.WriteStringValue(value);
    }

    private static void WriteList(Utf8JsonWriter w, IReadOnlyList<string> items, bool nullWhenEmpty)
    {
        if (items.Count == 0 && nullWhenEmpty) { w.WriteNullValue(); return; }
        w.WriteStartArray();
        foreach (var s in items) w.WriteStringValue(s);
        w.WriteEndArray();
    }
}
