namespace LoRA.Managed.Data;

/// <summary>
/// Where fetched data lives, one rule for every fetcher (MNIST, corpora, tokenizer files): the per-user cache root
/// <c>$XDG_CACHE_HOME/lora-managed</c> when that variable is set, else <c>%LOCALAPPDATA%\lora-managed</c> on Windows
/// and <c>~/.cache/lora-managed</c> elsewhere, with one folder per kind of data. <c>$LORA_MANAGED_DATA</c> names a
/// folder of the user's own data, searched before the cache.
/// </summary>
public static class DataCache
{
    /// <summary>The environment variable naming the user's data folder.</summary>
    public const string DataVariable = "LORA_MANAGED_DATA";

    /// <summary>The cache root (see the class summary).</summary>
    public static string Root()
    {
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string root = !string.IsNullOrWhiteSpace(xdg) ? xdg
            : OperatingSystem.IsWindows() ? Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData)
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "lora-managed");
    }

    /// <summary>The cache folder of one kind of data, e.g. <c>mnist</c>.</summary>
    public static string Folder(string name) => Path.Combine(Root(), name);

    /// <summary><c>$LORA_MANAGED_DATA</c>, or null when it is unset or blank.</summary>
    public static string? UserDataFolder() =>
        Environment.GetEnvironmentVariable(DataVariable) is { } d && !string.IsNullOrWhiteSpace(d) ? d : null;
}
