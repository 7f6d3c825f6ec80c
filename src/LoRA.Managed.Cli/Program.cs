using System.CommandLine;
using System.CommandLine.Help;
using LoRA.Managed.Cli.Commands;
using LoRA.Managed.Training;

namespace LoRA.Managed.Cli;

/// <summary>
/// The <c>lora</c> command. Exit status: 0 on success, 2 on any error (bad options, missing or corrupt
/// files, failed training), with one line on stderr (<c>--verbose</c> adds the stack trace), and 130 when
/// <c>train</c> or <c>finetune</c> is interrupted with Ctrl+C, SIGTERM or SIGHUP (after saving a checkpoint, or after
/// finishing the final save).
/// </summary>
public static class Program
{
    /// <summary>Exit status for every error.</summary>
    public const int ErrorExitCode = 2;

    /// <summary>
    /// The process entry point. Ctrl+C, SIGTERM and SIGHUP cancel the run's token (training then stops between two
    /// steps, saving a checkpoint where one is configured); a second Ctrl+C ends the process at once.
    /// </summary>
    public static int Main(string[] args)
    {
        using var signals = InterruptSignals.Listen(Console.Error);
        return Run(args, Console.Out, Console.Error, signals.Token);
    }

    /// <summary>
    /// Runs the command line in-process, writing to the given writers; <paramref name="cancellation"/> stands for
    /// Ctrl+C (tests call this directly).
    /// </summary>
    public static int Run(string[] args, TextWriter output, TextWriter error, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        var context = new CliContext(output, error, CliContext.DetectInteractive(output), cancellation);
        var verbose = new Option<bool>("--verbose") { Description = "Show the stack trace of an error.",
            Recursive = true };
        var root = new RootCommand("LoRA.Managed: train MNIST classifiers and fine-tune them with " +
            "LoRA, in pure managed C#.")
        {
            DemoCommand.Create(context),
            SvdDemoCommand.Create(context),
            TrainCommand.Create(context),
            FinetuneCommand.Create(context),
            EvalCommand.Create(context),
            MergeCommand.Create(context),
            AdaptersCommand.Create(context),
            SweepCommand.Create(context),
            LmDemoCommand.Create(context),
            LmEvalCommand.Create(context),
            GenerateCommand.Create(context),
            LmFinetuneCommand.Create(context),
            BenchCommand.Create(context),
        };
        root.Options.Add(verbose);

        ParseResult? parse = null;
        try
        {
            parse = root.Parse(args);
            if (parse.Errors.Count > 0 && parse.Action is not HelpAction)
            {
                error.WriteLine("lora: " + string.Join(" ", parse.Errors.Select(Describe)));
                return ErrorExitCode;
            }
            return parse.Invoke(new InvocationConfiguration { Output = output, Error = error,
                EnableDefaultExceptionHandler = false });
        }
        // Ctrl+C or a signal during training: the message says what was saved, truly
        catch (TrainingCanceledException e)
        {
            string saved = e.CheckpointPath is { } path
                ? $"checkpoint saved to {path}; continue with --resume and the same options"
                : "no checkpoint saved (give --checkpoint-dir or --out to keep one)";
            error.WriteLine($"lora: interrupted after step {e.GlobalStep}: {saved}.");
            return CheckpointOptions.InterruptedExitCode;
        }
        catch (CommandInterruptedException e) // a signal during the final save, which was finished first
        {
            error.WriteLine("lora: " + e.Message);
            return CheckpointOptions.InterruptedExitCode;
        }
        catch (Exception e)
        {
            error.WriteLine("lora: " + OneLine(e));
            if (parse?.GetValue(verbose) ?? args.Contains("--verbose")) error.WriteLine(e.ToString());
            return ErrorExitCode;
        }
    }

    // One line, prefixed with the option's name when System.CommandLine's message does not say it.
    private static string Describe(System.CommandLine.Parsing.ParseError error)
    {
        string message = string.Join(" ",
            error.Message.Split(['\r', '\n', '\t'],
                StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        string? option = error.SymbolResult switch
        {
            System.CommandLine.Parsing.OptionResult o => o.Option.Name,
            System.CommandLine.Parsing.ArgumentResult { Parent: System.CommandLine.Parsing.OptionResult o } =>
                o.Option.Name,
            _ => null,
        };
        return option is null || message.StartsWith(option, StringComparison.Ordinal)
            || message.Contains($"'{option}'", StringComparison.Ordinal) ? message : $"{option}: {message}";
    }

    // The innermost message usually names the file or field; keep the outer one if it adds context.
    private static string OneLine(Exception e)
    {
        string message = e is AggregateException { InnerExceptions.Count: 1 } a ? a.InnerException!.Message : e.Message;
        return message.ReplaceLineEndings(" ");
    }
}
