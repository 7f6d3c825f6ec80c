using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using LoRA.Managed.Models;
using LoRA.Managed.Data;
using LoRA.Managed.IO;
using LoRA.Managed.Kernels;
using LoRA.Managed.Recipes;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using LoRA.Managed.Training;
using Spectre.Console;

namespace LoRA.Managed.Cli.Commands;

/// <summary>
/// <c>lora sweep</c>: what the blog does not show. Trains the base model once (the blog's phase 1), then
/// adapts a fresh copy of it for every rank and every initialisation, reporting accuracy on 8–9 and how
/// much of 0–7 survives. Writes a Markdown table and an SVG plot for the docs.
/// </summary>
internal static class SweepCommand
{
    private sealed record Row(string Init, int Rank, long Trainable, double Acc89, double Acc0To7, double Seconds);

    public static Command Create(CliContext context)
    {
        var seed = CommonOptions.Seed();
        var ranks = new Option<string>("--ranks") { Description = "Ranks to try with the blog's SVD init (at most 10 " +
            "on layers.5, whose weight is 10×256: 10 is full rank).", DefaultValueFactory = _ => "1,2,4,8,10" };
        var inits = new Option<string>("--inits") { Description = "Initialisations to compare at --rank.",
            DefaultValueFactory = _ => "svd,pissa,default" };
        var rank = CommonOptions.Int("--rank", 4, 1, "Rank for the initialisation comparison (the blog: 4).");
        var epochs = CommonOptions.Int("--epochs", 5, 1, "Base epochs on 0-7.");
        var loraEpochs = CommonOptions.Int("--lora-epochs", 3, 1, "Adapter epochs on 8-9.");
        var data = CommonOptions.Data();
        var output =
            CommonOptions.NonEmptyPath(new Option<string?>("--out") { Description = "Write sweep.md (tables) and " +
                "sweep.svg (plot) into this directory.", HelpName = "DIR" });
        var command = new Command("sweep",
            "Rank sweep and initialisation comparison of the blog's adapter on one base model.")
        {
            seed, ranks, inits, rank, epochs, loraEpochs, data, output,
        };
        RecipeCommand.SetAction(command,
            parse => Run(context, parse.GetValue(seed),
                CommonOptions.CommaInts(parse.GetValue(ranks), "--ranks", 1, "a positive integer"),
                ParseInits(parse.GetValue(inits)!),
            parse.GetValue(rank), parse.GetValue(epochs), parse.GetValue(loraEpochs), parse.GetValue(data),
            parse.GetValue(output)));
        return command;
    }

    private static Dictionary<string, object?> Run(CliContext context, ulong seed, int[] ranks, LoraInit[] inits,
        int initRank, int epochs,
        int loraEpochs, string? dataDirectory, string? outDir)
    {
        if (outDir is not null) ModelArguments.RequireWritableDirectory("--out", outDir, createParents: true);
        if (outDir is not null) Directory.CreateDirectory(outDir);
        LoadedMnist mnist = LoadedMnist.Load(context, dataDirectory, normalize: false);
        MnistDataset test0To7 = mnist.Test.Filter(BlogExperiment.BaseDigits),
            test89 = mnist.Test.Filter(BlogExperiment.NewDigits);
        MnistDataset train89 = mnist.Train.Filter(BlogExperiment.NewDigits);
        var generator = new TorchGenerator(seed);
        var observer = new CliObserver(context);
        var (baseModel, _) = ClassifierTraining.TrainBlogMlp(mnist.Train.Filter(BlogExperiment.BaseDigits),
            new ClassifierTrainingOptions
        {
            Epochs = epochs, LearningRate = BlogExperiment.BaseLearningRate, BatchSize = BlogExperiment.BatchSize,
            Label = "base 0-7",
        }, generator, observer, context.Cancellation);
        double base0To7 = ClassifierEvaluation.Evaluate(baseModel, test0To7).Accuracy;
        var state = baseModel.StateDict().ToDictionary(p => p.Key, p => p.Value.Clone());
        GeneratorState afterBase = generator.GetState();

        Row Adapt(LoraInit init, int rank)
        {
            // Every variant starts from the same base weights and the same generator state, so they differ only by the
            // adapter.
            var model = Mlp.Blog(new TorchGenerator(0));
            model.LoadStateDict(state);
            var g = new TorchGenerator();
            g.SetState(afterBase);
            var config = BlogExperiment.BlogLora with { Rank = rank, Init = init };
            var clock = Stopwatch.StartNew();
            var (peft, _) = ClassifierTraining.FineTune(model, config, train89, new ClassifierTrainingOptions
            {
                Epochs = loraEpochs, LearningRate = BlogExperiment.LoraLearningRate,
                BatchSize = BlogExperiment.BatchSize, Label = $"{init} r={rank}",
            }, g, observer, context.Cancellation);
            return new Row(init.ToString(), rank, peft.TrainableParameterCount,
                ClassifierEvaluation.Evaluate(peft, test89).Accuracy,
                ClassifierEvaluation.Evaluate(peft, test0To7).Accuracy, clock.Elapsed.TotalSeconds);
        }

        var rankRows = ranks.Select(r => Adapt(LoraInit.Svd, r)).ToList();
        var initRows = inits.Select(i => Adapt(i, initRank)).ToList();
        Print(context, $"rank sweep (SVD init, alpha 1, layers.5; base model: {base0To7:F4} on 0-7)", rankRows);
        Print(context, $"initialisations at rank {initRank}", initRows);

        if (outDir is not null)
        {
            AtomicFile.WriteAllBytes(Path.Combine(outDir, "sweep.md"),
                Encoding.UTF8.GetBytes(Markdown(seed, base0To7, rankRows, initRows)));
            AtomicFile.WriteAllBytes(Path.Combine(outDir, "sweep.svg"),
                Encoding.UTF8.GetBytes(SweepPlot.Svg(rankRows.Select(r => (r.Rank, r.Acc89, r.Acc0To7)).ToList(),
                initRows.Select(r => (r.Init, r.Acc89, r.Acc0To7)).ToList())));
            context.Output.WriteLine($"wrote {Path.Combine(outDir, "sweep.md")} and sweep.svg");
        }
        object Rows(IEnumerable<Row> rows) => rows.Select(r => new Dictionary<string, object?>
        {
            ["init"] = r.Init.ToLowerInvariant(), ["rank"] = r.Rank, ["trainable_params"] = r.Trainable,
            ["acc_89"] = r.Acc89, ["acc_0to7"] = r.Acc0To7, ["seconds"] = r.Seconds,
        }).ToList();
        return new Dictionary<string, object?>
        {
            ["seed"] = seed, ["base_acc_0to7"] = base0To7, ["ranks"] = Rows(rankRows), ["inits"] = Rows(initRows),
            ["threads"] = ComputeThreads.Max,
        };
    }

    private static void Print(CliContext context, string title, IEnumerable<Row> rows)
    {
        var table = new Table { Border = context.Border, Title = new TableTitle(Markup.Escape(title)) };
        foreach (string c in new[] { "init", "rank", "trainable", "acc 8-9", "acc 0-7 after" }) table.AddColumn(c);
        foreach (Row r in rows)
            table.AddRow(r.Init, r.Rank.ToString(CultureInfo.InvariantCulture),
                r.Trainable.ToString("N0", CultureInfo.InvariantCulture),
                r.Acc89.ToString("F4", CultureInfo.InvariantCulture),
                r.Acc0To7.ToString("F4", CultureInfo.InvariantCulture));
        context.Console.Write(table);
    }

    private static string Markdown(ulong seed, double base0To7, List<Row> rankRows, List<Row> initRows)
    {
        var md = new StringBuilder();
        md.Append(CultureInfo.InvariantCulture,
            $"Produced by `lora sweep --seed {seed} --out DIR` (base model: {base0To7:F4} on test 0-7).\n\n");
        md.Append("| init | rank | trainable params | accuracy on test 8-9 | accuracy on test 0-7 afterwards " +
            "|\n|---|---:|---:|---:|---:|\n");
        foreach (Row r in rankRows.Concat(initRows))
            md.Append(CultureInfo.InvariantCulture,
                $"| {r.Init} | {r.Rank} | {r.Trainable:N0} | {r.Acc89:F4} | {r.Acc0To7:F4} |\n");
        return md.ToString();
    }

    private static LoraInit[] ParseInits(string text) =>
        CommonOptions.CommaList(text)
            .Select(s => s switch
            {
                "svd" => LoraInit.Svd, "pissa" => LoraInit.Pissa, "default" => LoraInit.Default,
                "gaussian" => LoraInit.Gaussian,
                _ => throw new FormatException($"--inits: '{s}' is not one of svd, pissa, default, gaussian."),
            }).ToArray();
}
