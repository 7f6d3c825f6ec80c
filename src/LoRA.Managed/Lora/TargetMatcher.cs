using System.Globalization;
using System.Text.RegularExpressions;

namespace LoRA.Managed.Lora;

/// <summary>
/// PEFT's module-name matching, in one place: list entries of <c>target_modules</c>/<c>exclude_modules</c> (a name
/// equal to the entry or ending with <c>"." + entry</c>; here also a <c>*</c> wildcard for targets), the keys of
/// <c>rank_pattern</c>/<c>alpha_pattern</c> (<c>get_pattern_key</c>), and the layer index that
/// <c>layers_to_transform</c> selects on (<c>check_target_module_exists</c>).
/// </summary>
public static class TargetMatcher
{
    /// <summary>True when <paramref name="moduleName"/> is matched by <paramref name="key"/>: equal, a suffix on a
    /// dot boundary, or, if the key contains <c>*</c>, the whole name as a wildcard (<c>*</c> = any characters, dots
    /// included).</summary>
    public static bool Matches(string key, string moduleName)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(moduleName);
        if (moduleName.Length == 0) return false;   // the root is never a target
        if (key.Contains('*'))
            return Regex.IsMatch(moduleName, "^" + string.Join(".*", key.Split('*').Select(Regex.Escape)) + "$",
                RegexOptions.CultureInvariant);
        return MatchesName(key, moduleName);
    }

    /// <summary>PEFT's list-entry test (<c>key in names or name.endswith("." + key)</c>), as for
    /// <c>exclude_modules</c>.</summary>
    public static bool MatchesName(string key, string moduleName) =>
        moduleName == key || moduleName.EndsWith("." + key, StringComparison.Ordinal);

    /// <summary>PEFT's <c>get_pattern_key</c> test for a <c>rank_pattern</c>/<c>alpha_pattern</c> key: equal, or
    /// <c>re.match(rf"(.*\.)?({key})$", name)</c>.</summary>
    public static bool MatchesPattern(string key, string moduleName)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(moduleName);
        if (key == moduleName) return true;
        // re.match anchors at the start; "$" in Python also matches before a final newline, which module names lack.
        return Regex.IsMatch(moduleName, $"^(.*\\.)?({key})$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
    }

    /// <summary>PEFT's string form of <c>target_modules</c>/<c>exclude_modules</c>:
    /// <c>re.fullmatch(pattern, moduleName)</c>, the pattern matching the whole name.</summary>
    public static bool FullMatch(string pattern, string moduleName)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        ArgumentNullException.ThrowIfNull(moduleName);
        if (moduleName.Length == 0) return false;   // the root is never a target
        return Regex.IsMatch(moduleName, $"\\A(?:{pattern})\\z", RegexOptions.CultureInvariant,
            TimeSpan.FromSeconds(1));
    }

    /// <summary>Why <paramref name="key"/> is not a regular expression, or null when it is one.</summary>
    public static string? PatternError(string key)
    {
        try { _ = new Regex(key); return null; }
        catch (ArgumentException e) { return e.Message; }
    }

    /// <summary>
    /// The layer index of <paramref name="moduleName"/> as PEFT's <c>check_target_module_exists</c> finds it: the
    /// number after the first of <paramref name="layersPatterns"/> that matches <c>.*\.{pattern}\.(\d+)\.</c>, or,
    /// with no patterns, after any container (<c>.*\.[^.]*\.(\d+)\.</c>); null when there is none.
    /// </summary>
    public static int? LayerIndex(string moduleName, IReadOnlyList<string> layersPatterns)
    {
        ArgumentNullException.ThrowIfNull(moduleName);
        Match? m = null;
        if (layersPatterns.Count == 0)
            m = Regex.Match(moduleName, @"^.*\.[^.]*\.(\d+)\.", RegexOptions.CultureInvariant);
        else
            foreach (string pattern in layersPatterns)
            {
                m = Regex.Match(moduleName, $@"^.*\.{pattern}\.(\d+)\.", RegexOptions.CultureInvariant);
                if (m.Success) break;
            }
        return m is { Success: true }
            && int.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int index)
            ? index : null;
    }
}
