using System.CommandLine;
using LoRA.Managed.Cli.Bench;
using LoRA.Managed.Kernels;

namespace LoRA.Managed.Cli.Commands;

/// <summary>
/// <c>lora bench</c>: a few-second measurement of this machine (<see cref="QuickBench"/>): GEMM GFLOP/s on the
/// blog MLP's shapes against the naive triple loop, the training step of the base model and of its LoRA
/// fine-tuning, and the bytes a step allocates. <c>--profile</c> adds where one step's time goes, kernel by kernel.
/// </summary>
internal static class BenchCommand
{
    public static Command Create(CliContext context)
    {
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var seconds = CommonOptions.PositiveDouble("--seconds", 0.15,
            "Time budget per GEMM shape, in seconds (best time of the repetitions is kept).");
        var profile = new Option<bool>("--profile") { Description = "Also time each kernel of one training step " +
            "(GEMM per shape, bias, ReLU, cross-entropy, Adam)." };
        var command = new Command("bench",
            "Measure GEMM speed on the MLP's shapes, the training step and its allocations on this machine.")
        {
            threads, json, seconds, profile,
        };
        command.SetAction(parse => Run(context, parse.GetValue(threads), parse.GetValue(json), parse.GetValue(seconds),
            parse.GetValue(profile)));
        return command;
    }

    private static int Run(CliContext context, int? threads, string? json, double seconds, bool profile)
    {
        if (json is not null) ModelArguments.RequireWritableFile("--json", json);
        int n = threads ?? ComputeThreads.Max;
        QuickBenchResult result = QuickBench.Run(n, seconds);
        context.Output.Write(result.ToTable());
        if (profile)
        {
            var ops = StepProfile.Run(n);
            context.Output.Write(StepProfile.ToTable(ops, result.TrainStepMs));
        }
        if (json is not null) JsonReport.Write(json, result); // QuickBenchResult names its own snake_case keys
        return 0;
    }
}
