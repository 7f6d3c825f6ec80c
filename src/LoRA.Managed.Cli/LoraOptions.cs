using System.CommandLine;
using LoRA.Managed.Lora;

namespace LoRA.Managed.Cli;

/// <summary>
/// The adapter options <c>demo</c> and <c>finetune</c> share, with the blog's defaults: rank 4, α = 1,
/// SVD initialisation, scale α, the last layer only.
/// </summary>
internal sealed class LoraOptions
{
    public Option<int> Rank { get; } = CommonOptions.Int("--rank", 4, 1, "LoRA rank r (the blog: 4).");
    public Option<double> Alpha { get; } = CommonOptions.PositiveDouble("--alpha", 1.0, "LoRA alpha (the blog: 1).");
    public Option<string> Init { get; }
    public Option<string> Scaling { get; }
    public Option<string> Targets { get; }
    public Option<bool> UseDora { get; } = new("--use-dora") { Description = "DoRA (PEFT's use_dora): a trained " +
        "magnitude per output feature over the norm of W + s·B·A." };

    public LoraOptions()
    {
        Init = new Option<string>("--init") { Description = "Initialisation: svd (the blog: top-r SVD factors, W " +
            "kept), pissa (same factors, W becomes the residual), default (PEFT: Kaiming-uniform lora_A, zero lora_B).",
            DefaultValueFactory = _ => "svd" };
        Init.AcceptOnlyFromAmong("svd", "pissa", "default");
        Scaling = new Option<string>("--scaling") { Description = "Scale of B·A: alpha (the blog), alpha-over-rank " +
            "(PEFT), rslora (alpha/sqrt(r)).", DefaultValueFactory = _ => "alpha" };
        Scaling.AcceptOnlyFromAmong("alpha", "alpha-over-rank", "rslora");
        Targets = new Option<string>("--targets") { Description = "Comma-separated Linear modules to adapt (the " +
            "blog: layers.5).", DefaultValueFactory = _ => "layers.5", HelpName = "modules" };
        // Which names exist is the model's business: LoraModel.Validate checks them against the real model, once.
    }

    public IEnumerable<Option> All => [Rank, Alpha, Init, Scaling, Targets, UseDora];

    /// <summary>The PEFT-style configuration these options describe.</summary>
    public LoraConfig ToConfig(System.CommandLine.ParseResult parse) => new()
    {
        Rank = parse.GetValue(Rank),
        Alpha = parse.GetValue(Alpha),
        Init = parse.GetValue(Init) switch { "pissa" => LoraInit.Pissa, "default" => LoraInit.Default,
            _ => LoraInit.Svd },
        Scaling = parse.GetValue(Scaling) switch { "alpha-over-rank" => LoraScaling.AlphaOverRank,
            "rslora" => LoraScaling.RsLora, _ => LoraScaling.Alpha },
        TargetModules = CommonOptions.CommaList(parse.GetValue(Targets)),
        UseDora = parse.GetValue(UseDora),
    };

    public static string Describe(LoraConfig c) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"rank {c.Rank}, alpha {c.Alpha}, init {c.Init}, scaling {c.Scaling} (scale {c.Scale:G4}), " +
            $"targets {string.Join(",", c.TargetModules)}{(c.UseDora ? ", DoRA" : "")}");
}
