namespace LoRA.Managed.Data;

/// <summary>
/// The four MNIST files found in one directory, each raw or gzip-compressed (<c>name</c> or <c>name.gz</c>).
/// <see cref="Locate"/> looks in an explicit directory, then <c>$LORA_MANAGED_DATA</c>, then the per-user
/// cache, and downloads into the cache (<see cref="MnistFetcher"/>) when none has them.
/// </summary>
public sealed class MnistFiles
{
    /// <summary>The environment variable naming a directory that holds the MNIST files.</summary>
    public const string DataEnvironmentVariable = DataCache.DataVariable;

    /// <summary>The training images' file name (60,000 × 28 × 28).</summary>
    public const string TrainImagesName = "train-images-idx3-ubyte";
    /// <summary>The training labels' file name.</summary>
    public const string TrainLabelsName = "train-labels-idx1-ubyte";
    /// <summary>The test images' file name (10,000 × 28 × 28).</summary>
    public const string TestImagesName = "t10k-images-idx3-ubyte";
    /// <summary>The test labels' file name.</summary>
    public const string TestLabelsName = "t10k-labels-idx1-ubyte";

    /// <summary>The four file names, without a <c>.gz</c> suffix.</summary>
    public static IReadOnlyList<string> FileNames { get; } = [TrainImagesName, TrainLabelsName, TestImagesName,
        TestLabelsName];

    private MnistFiles(string directory, string[] paths)
    {
        Directory = directory;
        TrainImages = paths[0]; TrainLabels = paths[1]; TestImages = paths[2]; TestLabels = paths[3];
    }

    /// <summary>The directory the files are in.</summary>
    public string Directory { get; }
    /// <summary>Path of the training images.</summary>
    public string TrainImages { get; }
    /// <summary>Path of the training labels.</summary>
    public string TrainLabels { get; }
    /// <summary>Path of the test images.</summary>
    public string TestImages { get; }
    /// <summary>Path of the test labels.</summary>
    public string TestLabels { get; }

    /// <summary>The four paths in the order of <see cref="FileNames"/>.</summary>
    public IReadOnlyList<string> Paths => [TrainImages, TrainLabels, TestImages, TestLabels];

    /// <summary>The files in <paramref name="directory"/> if all four are there (raw preferred over <c>.gz</c>), else
    /// null.</summary>
    public static MnistFiles? TryFind(string? directory)
    {
        if (string.IsNullOrWhiteSpace(directory) || !System.IO.Directory.Exists(directory)) return null;
        var paths = new string[FileNames.Count];
        for (int i = 0; i < paths.Length; i++)
        {
            string raw = Path.Combine(directory, FileNames[i]);
            string gz = raw + ".gz";
            if (File.Exists(raw)) paths[i] = raw;
            else if (File.Exists(gz)) paths[i] = gz;
            else return null;
        }
        return new MnistFiles(Path.GetFullPath(directory), paths);
    }

    /// <summary>
    /// Finds MNIST: in <paramref name="explicitDirectory"/> (e.g. <c>--data DIR</c>) only, when given; else in
    /// <c>$LORA_MANAGED_DATA</c>, then the fetcher's cache directory, whose files are checked against their SHA-256 (a
    /// corrupt one is deleted and fetched again). If none has all four files, the fetcher downloads them into its
    /// cache.
    /// </summary>
    /// <remarks>
    /// An explicit directory is what the user asked for: if it lacks a file, that is an error naming the directory and
    /// the missing files, never a silent fallback to other data (or a download).
    /// </remarks>
    /// <exception cref="DatasetUnavailableException">An explicit directory lacks files, or the files are nowhere and
    /// could not be fetched; the message says which files to put where.</exception>
    public static MnistFiles Locate(string? explicitDirectory = null, MnistFetcher? fetcher = null)
    {
        if (!string.IsNullOrWhiteSpace(explicitDirectory))
            return TryFind(explicitDirectory) ?? throw new DatasetUnavailableException(MissingIn(explicitDirectory));
        fetcher ??= new MnistFetcher();
        var searched = new List<string>();
        foreach (string? dir in new[] { Environment.GetEnvironmentVariable(DataEnvironmentVariable) })
        {
            if (string.IsNullOrWhiteSpace(dir)) continue;
            searched.Add(dir);
            if (TryFind(dir) is { } found) return found;
        }
        searched.Add(fetcher.CacheDirectory);
        string? corruption = null;
        if (TryFind(fetcher.CacheDirectory) is { } cached)
        {
            corruption = fetcher.DeleteCorrupt(cached);
            if (corruption is null) return cached;
        }
        return fetcher.Fetch(searched, corruption);
    }

    /// <summary>Why <paramref name="directory"/> does not hold MNIST: it is not there, or which files it
    /// lacks.</summary>
    private static string MissingIn(string directory)
    {
        string full = Path.GetFullPath(directory);
        if (!System.IO.Directory.Exists(full))
            return $"MNIST directory {full}: does not exist; it must hold {string.Join(", ", FileNames)} (raw or .gz).";
        var missing = FileNames.Where(n => !File.Exists(Path.Combine(full, n))
            && !File.Exists(Path.Combine(full, n + ".gz")));
        return $"MNIST directory {full}: lacks {string.Join(", ", missing)} (raw or .gz); it must hold " +
            "all four MNIST files.";
    }
}
