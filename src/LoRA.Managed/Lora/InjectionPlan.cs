using LoRA.Managed.Nn;

namespace LoRA.Managed.Lora;

/// <summary>
/// What <see cref="LoraModel"/> will do to a model for one adapter, worked out and validated before anything
/// changes: the modules to adapt (a <see cref="Linear"/>, or a <see cref="LoraLinear"/> that gets another
/// adapter) and the modules whose parameters stay trainable.
/// </summary>
internal sealed record InjectionPlan(
    IReadOnlyList<KeyValuePair<string, Module>> Targets,
    IReadOnlyList<KeyValuePair<string, Module>> ModulesToSave)
{
    /// <summary>Resolves <paramref name="config"/>'s targets in <paramref name="root"/>; throws before any change on a
    /// bad target or rank.</summary>
    public static InjectionPlan Create(Module root, LoraConfig config, string adapterName)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        var modules = root.NamedModules().Where(p => p.Key.Length > 0).ToList();
        var wrapped = modules.Where(p => p.Value is LoraLayer).Select(p => p.Key + ".").ToList();
        // Modules inside an adapted layer (its base_layer and factors) are its business, never targets themselves.
        var candidates = modules.Where(p => !wrapped.Any(w => p.Key.StartsWith(w, StringComparison.Ordinal))).ToList();
        string names = string.Join(", ", candidates.Select(c => c.Key));

        var targets = new List<KeyValuePair<string, Module>>();
        bool allLinear = config.TargetModules is [LoraConfig.AllLinear];
        string? regex = config.TargetModulesRegex;
        foreach (string key in regex is null ? config.TargetModules : [regex])
        {
            // PEFT's "all-linear": every Linear/Conv1D but the output layer; exclude_modules applies to every target.
            // layers_to_transform filters only names matched by suffix, as PEFT's check_target_module_exists: not a
            // name given whole, nor one matched by the regular-expression form.
            var hits = candidates
                .Where(c => regex is not null ? TargetMatcher.FullMatch(regex, c.Key)
                    : allLinear ? c.Value is Linear or LoraLinear && !IsOutputLayer(c.Key)
                    : TargetMatcher.Matches(key, c.Key))
                .Where(c => !config.Excludes(c.Key)
                    && (regex is not null || c.Key == key || config.InTransformedLayers(c.Key)))
                .ToList();
            if (hits.Count == 0)
                throw new ArgumentException($"LoraModel: target module{(regex is null ? "" : "s regex")} " +
                    $"'{key}' matches no module" +
                    (config.ExcludeModules.Count > 0 || config.LayersToTransform.Count > 0
                        ? " that exclude_modules and layers_to_transform leave" : "") +
                        $". The model's modules are: {names}.");
            foreach (var hit in hits)
            {
                if (hit.Value is not (Linear or Embedding or LoraLayer))
                    throw new ArgumentException($"LoraModel: target module '{key}' matches '{hit.Key}', a "
                        + $"{hit.Value.GetType().Name}; only Linear and Embedding layers can carry LoRA. Linear "
                        + "modules: "
                        + string.Join(", ", candidates.Where(c => c.Value is Linear or LoraLinear).Select(c => c.Key))
                        + ".");
                if (!targets.Any(t => t.Key == hit.Key)) targets.Add(hit);
            }
        }
        foreach (var (name, module) in targets)
        {
            if (module is LoraLayer existing)
            {
                if (existing.Adapters.Contains(adapterName))
                    throw new ArgumentException($"LoraModel: '{name}' already has an adapter '{adapterName}'.");
                if (existing.IsMerged)
                    throw new InvalidOperationException(
                        $"LoraModel: '{name}' has a merged adapter; unmerge before adding '{adapterName}'.");
            }
            // The layers' own checks (rank_pattern may give this module its own rank), before anything changes.
            var moduleConfig = config.ForModule(name);
            switch (module is LoraLayer layer ? layer.BaseLayer : module)
            {
                case Embedding table: LoraEmbedding.CheckFits(table, moduleConfig, $"LoraModel: '{name}'"); break;
                case Linear linear: LoraLinear.CheckFits(linear, moduleConfig, $"LoraModel: '{name}'"); break;
            }
        }

        var save = new List<KeyValuePair<string, Module>>();
        foreach (string key in config.ModulesToSave)
        {
            var hits = candidates.Where(c => TargetMatcher.Matches(key, c.Key)).ToList();
            if (hits.Count == 0)
                throw new ArgumentException($"LoraModel: modules_to_save entry '{key}' matches no module. The " +
                    $"model's modules are: {names}.");
            foreach (var hit in hits)
            {
                if (targets.Any(t => t.Key == hit.Key || hit.Key.StartsWith(t.Key + ".", StringComparison.Ordinal)
                    || t.Key.StartsWith(hit.Key + ".", StringComparison.Ordinal)))
                    throw new ArgumentException($"LoraModel: '{hit.Key}' is both a LoRA target (or contains one) and " +
                        "in modules_to_save; choose one.");
                // A quantised weight is no parameter: training the module would silently leave it as it is.
                if (hit.Value.NamedModules(hit.Key)
                        .FirstOrDefault(m => m.Value is IQuantizableWeight { IsQuantized: true })
                    is { Value: IQuantizableWeight q } frozen)
                    throw new ArgumentException($"LoraModel: modules_to_save entry '{key}' matches '{hit.Key}', "
                        + $"whose '{frozen.Key}' weight is stored {q.QuantizedWeight!.DType} and cannot be trained; "
                        + "load the base with that weight in f32 (--base-dtype / --embedding-dtype f32), or target it "
                        + "with LoRA.");
                if (!save.Any(s => s.Key == hit.Key)) save.Add(hit);
            }
        }
        return new InjectionPlan(targets, save);
    }

    // PEFT removes the output embeddings (`model.get_output_embeddings()`, the LM head) from "all-linear".
    private static bool IsOutputLayer(string name) => name == "lm_head"
        || name.EndsWith(".lm_head", StringComparison.Ordinal);
}
