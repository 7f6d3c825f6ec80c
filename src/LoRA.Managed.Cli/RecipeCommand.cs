using System.CommandLine;
using LoRA.Managed.Kernels;

namespace LoRA.Managed.Cli;

/// <summary>
/// The skeleton every command shares: parse → options → recipe → report. It adds <c>--threads</c> and <c>--json</c>,
/// checks the JSON file's folder before any work, runs the body with the thread count scoped (restored afterwards),
/// and writes the figures the body returns. Errors and Ctrl+C become exit codes in <see cref="Program"/>.
/// </summary>
internal static class RecipeCommand
{
    /// <summary>Sets <paramref name="command"/>'s action to <paramref name="body"/>, which returns its JSON figures (or
    /// null).</summary>
    public static void SetAction(Command command, Func<ParseResult, object?> body, bool threads = true)
    {
        var threadsOption = threads ? CommonOptions.Threads() : null;
        var json = CommonOptions.Json();
        if (threadsOption is not null) command.Options.Add(threadsOption);
        command.Options.Add(json);
        command.SetAction(parse =>
        {
            string? jsonPath = parse.GetValue(json);
            if (jsonPath is not null) ModelArguments.RequireWritableFile("--json", jsonPath);
            using (ComputeThreads.Use(threadsOption is null ? null : parse.GetValue(threadsOption)))
            {
                object? figures = body(parse);
                if (jsonPath is not null && figures is not null) JsonReport.Write(jsonPath, figures);
            }
            return 0;
        });
    }
}
