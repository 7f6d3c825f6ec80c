using System.Diagnostics;
using System.Globalization;
using LoRA.Managed.Training;
using Spectre.Console;

namespace LoRA.Managed.Cli;

/// <summary>
/// Shows training progress: a live Spectre bar (epoch, step, loss, samples/s) on a terminal, or one plain
/// line per epoch when the output is redirected, so CI logs hold no ANSI codes or redraws.
/// </summary>
internal static class TrainingView
{
    /// <summary>Runs <paramref name="train"/>, feeding its step reports to the display.</summary>
    /// <param name="context">Where to write.</param>
    /// <param name="label">The run's name in each line.</param>
    /// <param name="epochs">Epochs in the run.</param>
    /// <param name="stepsPerEpoch">Optimiser steps per epoch.</param>
    /// <param name="train">Trains, reporting every step.</param>
    /// <param name="byStep">The run is bounded by a step count, not epochs (pass epochs 1 and the run's total steps as
    /// <paramref name="stepsPerEpoch"/>): the display follows the global step, and lines say "step s/total".</param>
    public static void Run(CliContext context, string label, int epochs, int stepsPerEpoch,
        Action<IProgress<TrainingProgress>> train, bool byStep = false)
    {
        int total = Math.Max(1, epochs * stepsPerEpoch);
        string Position(TrainingProgress p) => byStep
            ? string.Format(CultureInfo.InvariantCulture, "step {0}/{1}", p.GlobalStep, total)
            : string.Format(CultureInfo.InvariantCulture, "epoch {0}/{1}", p.Epoch, p.Epochs);
        if (!context.Interactive)
        {
            var clock = Stopwatch.StartNew();
            train(new Reporter(p =>
            {
                if (byStep ? p.GlobalStep != total : !p.EndOfEpoch) return;
                context.Output.WriteLine(string.Format(CultureInfo.InvariantCulture,
                    "{0} {1}: loss {2:F4} ({3} {4:F4}), {5:N0} samples/s, {6:F1} s",
                    label, Position(p), p.Loss, byStep ? "mean of the last epoch" : "mean", p.EpochMeanLoss,
                    p.SamplesPerSecond, clock.Elapsed.TotalSeconds));
            }));
            return;
        }

        context.Console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(),
                new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(label), maxValue: total);
                train(new Reporter(p =>
                {
                    task.Value = p.GlobalStep;
                    if (p.Step % 10 == 0 || p.EndOfEpoch)
                        task.Description = string.Format(CultureInfo.InvariantCulture,
                            "{0} {1} loss {2:F4} {3:N0}/s",
                            Markup.Escape(label), byStep ? Position(p)
                                : $"{Position(p)} step {p.Step}/{p.StepsPerEpoch}", p.EpochMeanLoss,
                                p.SamplesPerSecond);
                }));
                task.Value = task.MaxValue;
            });
    }

    // Synchronous: System.Progress<T> would post to the thread pool and report out of order.
    private sealed class Reporter(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
