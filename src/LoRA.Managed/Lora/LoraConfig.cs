namespace LoRA.Managed.Lora;

/// <summary>
/// What to adapt and how, mirroring PEFT's <c>LoraConfig</c>. Defaults are PEFT's except where noted.
/// A record, so <c>config with { Rank = 16 }</c> copies it with a change.
/// </summary>
public sealed record LoraConfig
{
    /// <summary>Rank r of the update; 1 ≤ r ≤ min(in, out) for every target. PEFT's default 8.</summary>
    public int Rank { get; init; } = 8;

    /// <summary>α; the scale derived from it depends on <see cref="Scaling"/>. PEFT's default 8.</summary>
    public double Alpha { get; init; } = 8;

    /// <summary>Dropout probability on the adapter's input while training (PEFT's <c>lora_dropout</c>), in [0,
    /// 1).</summary>
    public float Dropout { get; init; }

    /// <summary>Which biases train (PEFT's <c>bias</c>).</summary>
    public LoraBias Bias { get; init; } = LoraBias.None;

    /// <summary>
    /// Modules to wrap. Each entry matches a module whose full name equals it (<c>layers.5</c>), ends with
    /// it on a dot boundary (<c>q_proj</c> matches <c>blocks.0.attn.q_proj</c>), or, when it contains
    /// <c>*</c>, matches it as a wildcard over the full name (<c>*.q_proj</c>).
    /// </summary>
    public IReadOnlyList<string> TargetModules { get; init; } = Array.Empty<string>();

    /// <summary>The largest rank a module may get: <see cref="Rank"/> or a <see cref="RankPattern"/> value (the rank
    /// PEFT's <c>add_weighted_adapter</c> sizes a combination with).</summary>
    public int MaxRank => RankPattern.Select(p => p.Value).Append(Rank).Max();

    /// <summary>Initialisation of new adapters (PEFT's <c>init_lora_weights</c>).</summary>
    public LoraInit Init { get; init; } = LoraInit.Default;

    /// <summary>
    /// With <see cref="LoraInit.Pissa"/>: PEFT's fast PiSSA, <c>init_lora_weights="pissa_niter_K"</c>. The principal
    /// subspace comes from a randomized SVD (<c>torch.svd_lowrank(W, r, niter=K)</c>: Halko, Martinsson &amp; Tropp
    /// 2011, a Gaussian sketch and K power iterations) instead of the full SVD; null takes the full SVD.
    /// </summary>
    public int? PissaIterations { get; init; }

    /// <summary>With <see cref="LoraInit.LoftQ"/>: PEFT's <c>loftq_config.loftq_bits</c>. Only 4 (NF4) is
    /// supported.</summary>
    public int LoftQBits { get; init; } = 4;

    /// <summary>With <see cref="LoraInit.LoftQ"/>: PEFT's <c>loftq_config.loftq_iter</c>, the alternations of
    /// quantisation and low-rank fit (≥ 1).</summary>
    public int LoftQIterations { get; init; } = 1;

    /// <summary>How α becomes the scale. PEFT's default α/r.</summary>
    public LoraScaling Scaling { get; init; } = LoraScaling.AlphaOverRank;

    /// <summary>
    /// PEFT's <c>use_rslora</c> view of <see cref="Scaling"/>: true means α/√r. Setting it true selects
    /// <see cref="LoraScaling.RsLora"/>; setting it false leaves the scaling unchanged unless it was RsLora, which
    /// becomes α/r.
    /// </summary>
    public bool UseRsLora
    {
        get => Scaling == LoraScaling.RsLora;
        init => Scaling = value ? LoraScaling.RsLora
            : (Scaling == LoraScaling.RsLora ? LoraScaling.AlphaOverRank : Scaling);
    }

    /// <summary>
    /// PEFT's <c>use_dora</c>: weight-decomposed LoRA (<see cref="Dora"/>), each target's output rescaled per feature
    /// by a trained magnitude over the norm of the adapted weight. False by default, as in PEFT.
    /// </summary>
    public bool UseDora { get; init; }

    /// <summary>Modules (matched like targets) whose parameters stay trainable and are saved with the
    /// adapter.</summary>
    public IReadOnlyList<string> ModulesToSave { get; init; } = Array.Empty<string>();

    /// <summary>
    /// PEFT's <c>fan_in_fan_out</c>: the targets store W as (in, out) (GPT-2's Conv1D). Informational here (each
    /// layer knows its layout, as PEFT corrects the flag per layer); saving sets it when an adapted layer is Conv1D.
    /// </summary>
    public bool FanInFanOut { get; init; }

    /// <summary>PEFT's <c>task_type</c> (<c>CAUSAL_LM</c> for language models), or null.</summary>
    public string? TaskType { get; init; }

    /// <summary>PEFT's <c>base_model_name_or_path</c>: the base the adapter was trained on, or null.</summary>
    public string? BaseModelNameOrPath { get; init; }

    /// <summary>
    /// PEFT's <c>target_modules="all-linear"</c> shorthand, as the single entry of <see cref="TargetModules"/>: every
    /// Linear (and Conv1D) module except the output layer <c>lm_head</c>.
    /// </summary>
    public const string AllLinear = "all-linear";

    /// <summary>
    /// PEFT's <c>exclude_modules</c> (list form): modules never adapted even if a target matches them. An entry
    /// excludes a module whose name equals it or ends with <c>"." + entry</c>.
    /// </summary>
    public IReadOnlyList<string> ExcludeModules { get; init; } = Array.Empty<string>();

    /// <summary>
    /// PEFT's <c>target_modules</c> given as one string: a regular expression the module's whole name must match
    /// (<c>re.fullmatch</c>), e.g. <c>.*\.layers\.[0-3]\.self_attn\.(q|v)_proj</c>. When set,
    /// <see cref="TargetModules"/> is empty, and <see cref="LayersToTransform"/> does not apply, as in PEFT (the
    /// pattern can name the layers). .NET's regular expressions read the common Python patterns the same; Python-only
    /// syntax such as <c>(?P&lt;name&gt;…)</c> is refused.
    /// </summary>
    public string? TargetModulesRegex { get; init; }

    /// <summary>PEFT's <c>exclude_modules</c> given as one string: modules whose whole name it matches are never
    /// adapted (<c>re.fullmatch</c>); used instead of <see cref="ExcludeModules"/>.</summary>
    public string? ExcludeModulesRegex { get; init; }

    /// <summary>True when PEFT's <c>exclude_modules</c> (list or regular expression) excludes
    /// <paramref name="moduleName"/>.</summary>
    public bool Excludes(string moduleName) =>
        ExcludeModules.Any(e => TargetMatcher.MatchesName(e, moduleName))
        || ExcludeModulesRegex is { } pattern && TargetMatcher.FullMatch(pattern, moduleName);

    /// <summary>
    /// PEFT's <c>layers_to_transform</c>: when not empty, only targets inside these layer indices are adapted. The
    /// index is the number after the layer container in the module's name (<c>model.layers.3.self_attn.q_proj</c> → 3),
    /// found as PEFT does with <see cref="LayersPattern"/> or, without one, the regex <c>.*\.[^.]*\.(\d+)\.</c>.
    /// </summary>
    public IReadOnlyList<int> LayersToTransform { get; init; } = Array.Empty<int>();

    /// <summary>PEFT's <c>layers_pattern</c>: names of the layer container (<c>layers</c>, <c>h</c>); the first that
    /// matches <c>.*\.{pattern}\.(\d+)\.</c> gives the index. Used only with <see cref="LayersToTransform"/>.</summary>
    public IReadOnlyList<string> LayersPattern { get; init; } = Array.Empty<string>();

    /// <summary>True when <see cref="LayersToTransform"/> is empty or <paramref name="moduleName"/>'s layer index
    /// (PEFT's <c>check_target_module_exists</c>) is in it; a target with no layer index is then not adapted.</summary>
    public bool InTransformedLayers(string moduleName) =>
        LayersToTransform.Count == 0
        || TargetMatcher.LayerIndex(moduleName, LayersPattern) is int index && LayersToTransform.Contains(index);

    /// <summary>
    /// PEFT's <c>rank_pattern</c>: a rank for the modules a key matches instead of <see cref="Rank"/>. A key matches a
    /// module's full name when it equals it or, as a regular expression, matches the whole name or its end after a
    /// dot (<see cref="TargetMatcher.MatchesPattern"/>); the first matching key, in order, wins.
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, int>> RankPattern { get; init; } =
        Array.Empty<KeyValuePair<string, int>>();

    /// <summary>PEFT's <c>alpha_pattern</c>: an alpha for the modules a key matches (as <see cref="RankPattern"/>)
    /// instead of <see cref="Alpha"/>.</summary>
    public IReadOnlyList<KeyValuePair<string, double>> AlphaPattern { get; init; } =
        Array.Empty<KeyValuePair<string, double>>();

    /// <summary>
    /// The configuration module <paramref name="moduleName"/> gets: <see cref="Rank"/> and <see cref="Alpha"/>
    /// replaced by the first <see cref="RankPattern"/> / <see cref="AlphaPattern"/> key that matches it (PEFT's
    /// <c>_create_and_replace</c>), the patterns themselves dropped. Without patterns, this configuration itself.
    /// </summary>
    public LoraConfig ForModule(string moduleName)
    {
        ArgumentNullException.ThrowIfNull(moduleName);
        if (RankPattern.Count == 0 && AlphaPattern.Count == 0) return this;
        int rank = Rank;
        foreach (var (key, value) in RankPattern)
            if (TargetMatcher.MatchesPattern(key, moduleName)) { rank = value; break; }
        double alpha = Alpha;
        foreach (var (key, value) in AlphaPattern)
            if (TargetMatcher.MatchesPattern(key, moduleName)) { alpha = value; break; }
        return this with
        {
            Rank = rank, Alpha = alpha,
            RankPattern = Array.Empty<KeyValuePair<string, int>>(),
            AlphaPattern = Array.Empty<KeyValuePair<string, double>>(),
        };
    }

    /// <summary>The scale <c>ΔW = scale·B·A</c> uses for this configuration.</summary>
    public double Scale => ScaleFor(Alpha, Rank, Scaling);

    /// <summary>The scale for α, r and a scaling rule: α, α/r or α/√r.</summary>
    public static double ScaleFor(double alpha, int rank, LoraScaling scaling) => scaling switch
    {
        LoraScaling.Alpha => alpha,
        LoraScaling.AlphaOverRank => alpha / rank,
        LoraScaling.RsLora => alpha / Math.Sqrt(rank),
        _ => throw new ArgumentOutOfRangeException(nameof(scaling), scaling, "LoraConfig: unknown scaling."),
    };

    /// <summary>Checks the values that do not depend on the model.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names it.</exception>
    public void Validate()
    {
        if (Rank < 1) throw new ArgumentException($"LoraConfig: Rank must be at least 1, got {Rank}.");
        if (!double.IsFinite(Alpha)) throw new ArgumentException($"LoraConfig: Alpha must be finite, got {Alpha}.");
        if (!(Dropout >= 0f && Dropout < 1f))
            throw new ArgumentException($"LoraConfig: Dropout must be in [0, 1), got {Dropout}.");
        if (TargetModules is null)
            throw new ArgumentException("LoraConfig: TargetModules must not be null (use an empty list with " +
                "TargetModulesRegex).");
        if (TargetModulesRegex is not null)
        {
            if (TargetModules.Count > 0)
                throw new ArgumentException("LoraConfig: give TargetModules or TargetModulesRegex, not both (PEFT's " +
                    "target_modules is a list or one string).");
            CheckPattern(nameof(TargetModulesRegex), TargetModulesRegex);
        }
        else if (TargetModules.Count == 0)
            throw new ArgumentException("LoraConfig: TargetModules is empty; name at least one " +
                "Linear module to adapt.");
        if (ExcludeModulesRegex is not null) CheckPattern(nameof(ExcludeModulesRegex), ExcludeModulesRegex);
        if (TargetModules.Any(string.IsNullOrWhiteSpace))
            throw new ArgumentException("LoraConfig: TargetModules contains an empty name.");
        if (ModulesToSave is null)
            throw new ArgumentException("LoraConfig: ModulesToSave must not be null (use an empty list).");
        if (!Enum.IsDefined(Init)) throw new ArgumentException($"LoraConfig: unknown Init {Init}.");
        if (Init == LoraInit.LoftQ && (LoftQBits != 4 || LoftQIterations < 1))
            throw new ArgumentException($"LoraConfig: LoftQ needs LoftQBits = 4 (NF4; got {LoftQBits}) and " +
                $"LoftQIterations ≥ 1 (got {LoftQIterations}).");
        if (PissaIterations is int niter && (niter < 1 || Init != LoraInit.Pissa))
            throw new ArgumentException($"LoraConfig: PissaIterations {niter} needs Init = Pissa and at least 1 " +
                "iteration (PEFT's pissa_niter_K).");
        if (!Enum.IsDefined(Bias)) throw new ArgumentException($"LoraConfig: unknown Bias {Bias}.");
        if (LayersToTransform is null || LayersPattern is null)
            throw new ArgumentException("LoraConfig: LayersToTransform and LayersPattern must not be " +
                "null (use empty lists).");
        if (LayersToTransform.Any(i => i < 0))
            throw new ArgumentException("LoraConfig: LayersToTransform holds a negative index.");
        if (LayersPattern.Any(string.IsNullOrWhiteSpace))
            throw new ArgumentException("LoraConfig: LayersPattern contains an empty name.");
        if (ExcludeModules is null)
            throw new ArgumentException("LoraConfig: ExcludeModules must not be null (use an empty list).");
        if (ExcludeModules.Any(string.IsNullOrWhiteSpace))
            throw new ArgumentException("LoraConfig: ExcludeModules contains an empty name.");
        if (TargetModules.Contains(AllLinear) && TargetModules.Count > 1)
            throw new ArgumentException($"LoraConfig: '{AllLinear}' stands for every Linear layer; give it " +
                "alone in TargetModules.");
        if (RankPattern is null || AlphaPattern is null)
            throw new ArgumentException("LoraConfig: RankPattern and AlphaPattern must not be null " +
                "(use an empty list).");
        foreach (var (key, value) in RankPattern)
            if (value < 1)
                throw new ArgumentException($"LoraConfig: RankPattern['{key}'] must be at least 1, got {value}.");
        foreach (var (key, value) in AlphaPattern)
            if (!double.IsFinite(value) || !float.IsFinite((float)value))
                throw new ArgumentException($"LoraConfig: AlphaPattern['{key}'] must be finite, got {value}.");
        foreach (string key in RankPattern.Select(p => p.Key).Concat(AlphaPattern.Select(p => p.Key)))
            if (TargetMatcher.PatternError(key) is { } error)
                throw new ArgumentException($"LoraConfig: pattern key '{key}' is not a regular expression: {error}");
        // The forward pass multiplies by (float)Scale: a double such as 1e308 is finite but becomes infinity there.
        if (!float.IsFinite((float)Scale))
            throw new ArgumentException($"LoraConfig: Alpha {Alpha} gives the scale {Scale}, which is infinite as a " +
                "float32; use a smaller alpha.");
    }

    // A PEFT regular-expression field: not blank, and in the syntax TargetMatcher reads.
    private static void CheckPattern(string field, string pattern)
    {
        if (string.IsNullOrWhiteSpace(pattern)) throw new ArgumentException($"LoraConfig: {field} is empty.");
        if (TargetMatcher.PatternError(pattern) is { } error)
            throw new ArgumentException($"LoraConfig: {field} '{pattern}' is not a regular expression this engine " +
                $"reads: {error}");
    }
}
