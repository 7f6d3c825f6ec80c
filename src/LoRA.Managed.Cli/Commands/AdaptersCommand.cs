using System.CommandLine;
using System.Globalization;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;

namespace LoRA.Managed.Cli.Commands;

/// <summary>
/// <c>lora adapters combine</c>: PEFT's <c>add_weighted_adapter</c> from the command line. Loads the base once, each
/// <c>--adapter DIR:WEIGHT</c> beside it, combines them (<c>linear</c>, <c>cat</c> or <c>svd</c>, see
/// <see cref="AdapterCombination"/>) and saves the result as an ordinary PEFT adapter folder, both files replaced
/// atomically.
/// </summary>
internal static class AdaptersCommand
{
    public static Command Create(CliContext context)
    {
        var baseModel = CommonOptions.NonEmptyPath(new Option<string>("--base")
        {
            Description = "The base model the adapters were trained on: a Hugging Face folder, or the blog MLP's "
                + "safetensors file.",
            Required = true, HelpName = "PATH",
        });
        var adapters = new Option<string[]>("--adapter")
        {
            Description = "An adapter folder and its weight, DIR:WEIGHT (weight 1 when omitted; negative subtracts). "
                + "Repeat for each adapter.",
            Required = true, HelpName = "DIR:WEIGHT", Arity = ArgumentArity.OneOrMore,
        };
        var combination = new Option<string>("--combination")
        {
            Description = "linear (equal ranks; weights split as square roots between A and B), cat (ranks add; exact "
                + "weighted sum) or svd (weighted sum of the ΔWs, truncated to --rank). PEFT's default: svd.",
            DefaultValueFactory = _ => "svd", HelpName = "TYPE",
        };
        combination.AcceptOnlyFromAmong("linear", "cat", "svd");
        var rank = new Option<int?>("--rank")
        {
            Description = "svd only: the combined rank (default: the largest of the adapters').", HelpName = "N",
        };
        var clamp = new Option<double?>("--svd-clamp")
        {
            Description = "svd only: clamp both factors to this quantile of their entries (PEFT's svd_clamp).",
            HelpName = "Q",
        };
        var output = ModelArguments.Out(
            "The combined adapter's folder (adapter_model.safetensors + adapter_config.json).");
        var combine = new Command("combine",
            "Combine LoRA adapters with weights into one PEFT adapter (PEFT's add_weighted_adapter).")
        {
            baseModel, adapters, combination, rank, clamp, output,
        };
        RecipeCommand.SetAction(combine, parse => Run(context, parse.GetValue(baseModel)!, parse.GetValue(adapters)!,
            parse.GetValue(combination)!, parse.GetValue(rank), parse.GetValue(clamp), parse.GetValue(output)!),
            threads: false);
        return new Command("adapters", "Work with saved LoRA adapters.") { combine };
    }

    private static Dictionary<string, object?> Run(CliContext context, string basePath, string[] specs,
        string combination, int? rank, double? clamp, string outDir)
    {
        var type = Enum.Parse<CombinationType>(combination, ignoreCase: true);
        if (type != CombinationType.Svd && (rank is not null || clamp is not null))
            throw new ArgumentException($"--rank and --svd-clamp apply to --combination svd only, not {combination}.");
        var inputs = specs.Select(Parse).ToList();
        foreach (var (dir, _) in inputs) ModelArguments.RequireAdapterDirectory(dir);
        // Before the base is loaded: AddWeightedAdapter refuses DoRA and unequal ranks for linear too, but later.
        var configs = inputs.Select(i => ReadConfig(i.Dir)).ToList();
        if (inputs.Where((_, k) => configs[k].UseDora).FirstOrDefault() is { Dir: { } dora })
            throw new ArgumentException($"--adapter {dora} uses DoRA, whose magnitude vector has no weighted "
                + "combination (PEFT's add_weighted_adapter would drop the trained magnitudes); merge it with "
                + "lora merge instead, or combine plain LoRA adapters.");
        if (type == CombinationType.Linear)
        {
            var ranks = inputs.Select((i, k) => (i.Dir, Rank: configs[k].MaxRank)).ToList();
            if (ranks.Select(r => r.Rank).Distinct().Count() > 1)
                throw new ArgumentException("--combination linear needs adapters of one rank, but "
                    + $"{string.Join(", ", ranks.Select(r => $"{r.Dir} has r={r.Rank}"))}; use cat or svd.");
        }
        ModelArguments.RequireWritableDirectory("--out", outDir, createParents: true);

        Module model = Directory.Exists(basePath)
            ? Models.Hf.HfModel.Load(basePath)
            : ModelArguments.LoadBlogMlp(basePath);
        string[] names = inputs.Select((_, i) => $"adapter{i + 1}").ToArray();
        var peft = PeftModel.FromPretrained(model, inputs[0].Dir, adapterName: names[0]);
        for (int i = 1; i < inputs.Count; i++) peft.LoadAdapter(inputs[i].Dir, names[i]);
        peft.AddWeightedAdapter(names, inputs.Select(i => i.Weight).ToArray(), "combined", type, rank, clamp);
        peft.SaveAdapter(outDir, "combined");   // refuses infinities (huge weights can overflow float32)
        int layers = peft.AdaptedLayers().Count(l => l.Value.Adapters.Contains("combined"));

        int newRank = peft.Adapters["combined"].Rank;
        context.Output.WriteLine($"combined {inputs.Count} adapter(s) ({combination}) into {Path.GetFullPath(outDir)}: "
            + $"rank {newRank} on {layers} layer(s)");
        return new Dictionary<string, object?>
        {
            ["out"] = Path.GetFullPath(outDir),
            ["combination"] = combination,
            ["rank"] = newRank,
            ["layers"] = layers,
            ["adapters"] = inputs
                .Select(i => new Dictionary<string, object?>
                {
                    ["path"] = Path.GetFullPath(i.Dir), ["weight"] = i.Weight,
                })
                .ToList(),
        };
    }

    /// <summary>DIR:WEIGHT, split at the last colon when what follows is a number (a bare DIR weighs 1).</summary>
    private static (string Dir, double Weight) Parse(string spec)
    {
        int colon = spec.LastIndexOf(':');
        if (colon > 0
            && double.TryParse(spec[(colon + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out double w))
        {
            if (!double.IsFinite(w)) throw new ArgumentException($"--adapter {spec}: the weight {w} is not finite.");
            return (spec[..colon], w);
        }
        return (spec, 1.0);
    }

    private static LoraConfig ReadConfig(string dir) =>
        AdapterConfigFile.Read(Path.Combine(dir, AdapterConfigFile.FileName));
}
