using System.Text.RegularExpressions;

namespace LoRA.Managed.Lora;

/// <summary>
/// PEFT's module matching: a key matches a module name when it equals it, when the name ends with
/// <c>"." + key</c> (a suffix on a dot boundary), or, if the key contains <c>*</c>, when the whole name
/// matches it as a wildcard (<c>*</c> = any characters, dots included).
/// </summary>
public static class TargetMatcher
{
    /// <summary>True when <paramref name="moduleName"/> is matched by <paramref name="key"/>.</summary>
    public static bool Matches(string key, string moduleName)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(moduleName);
        if (moduleName.Length == 0) return false;   // the root is never a target
        if (key.Contains('*'))
            return Regex.IsMatch(moduleName, "^" + string.Join(".*", key.Split('*').Select(Regex.Escape)) + "$", RegexOptions.CultureInvariant);
        return moduleName == key || moduleName.EndsWith("." + key, StringComparison.Ordinal);
    }
}
