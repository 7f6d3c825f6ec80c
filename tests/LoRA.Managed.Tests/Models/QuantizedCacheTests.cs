using System.Buffers.Binary;
using System.Text.Json;
using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Nn;
using LoRA.Managed.Tests.Cli;

namespace LoRA.Managed.Tests.Models;

/// <summary>
/// The quantised-weight cache (issue 16: "quantised copies may be cached beside the model, checksummed, never silently
/// stale"): a cached load computes bit for bit what a fresh one does without reading the quantised tensors; a
/// truncated, damaged, other-version or stale cache is reported in one line and rebuilt, never used; a read-only
/// model folder sends the cache under the cache root; a write that fails half-way leaves no cache behind.
/// </summary>
public class QuantizedCacheTests
{
    private static HfFixtures.TempDir Copy(string fixture)
    {
        var dir = new HfFixtures.TempDir();
        foreach (string f in Directory.GetFiles(fixture.Contains('/') ? fixture : HfFixtures.Folder(fixture)))
        {
            string to = Path.Combine(dir.Path, Path.GetFileName(f));
            File.Copy(f, to);
            // the shared model folder's files are read-only; a test's copy is changed in place
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(to, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        return dir;
    }

    private static (CausalLm Model, List<string> Warnings) Load(string dir, BaseDType d, bool cache = true,
        string? root = null)
    {
        var warnings = new List<string>();
        var options = new HfLoadOptions
        {
            BaseDType = d, QuantizedCache = cache, QuantizedCacheRoot = root, Warning = warnings.Add,
        };
        var model = HfModel.Load(dir, options);
        return (model, warnings);
    }

    private static float[] Logits(CausalLm model, string fixture)
    {
        int[] ids = HfFixtures.Ints(HfFixtures.Expected(fixture).GetProperty("ids"));
        using var _ = Tape.NoGrad();
        return model.Forward(ids, 1, ids.Length).Data.ToArray();
    }

    private static string CachePath(string dir, BaseDType d) =>
        Path.Combine(dir, ".lora-managed", $"quantized-{d.ToString().ToLowerInvariant()}.bin");

    [Test]
    public void ACachedLoadIsBitwiseTheFreshLoad(
        [Values("gpt2-tiny", "llama-gqa-tied")] string name,
        [Values(BaseDType.Bf16, BaseDType.F16, BaseDType.Int8, BaseDType.Nf4)] BaseDType d)
    {
        using var dir = Copy(name);
        var (fresh, none) = Load(dir.Path, d, cache: false);
        Assert.That(File.Exists(CachePath(dir.Path, d)), Is.False, "no cache when it is off");
        var (building, w1) = Load(dir.Path, d);
        Assert.That(File.Exists(CachePath(dir.Path, d)), "the first load writes the cache beside the model");
        var (cached, w2) = Load(dir.Path, d);
        Assert.That(none.Concat(w1).Concat(w2), Is.Empty, "a missing cache is built without a warning");
        float[] expected = Logits(fresh, name);
        Assert.That(Logits(building, name), Is.EqualTo(expected));
        Assert.That(Logits(cached, name), Is.EqualTo(expected), "bitwise");
        Assert.That(cached.Float32Checksum, Is.EqualTo(fresh.Float32Checksum).And.Not.Null);
        var quantised = cached.NamedModules().Where(m => m.Value is IQuantizableWeight { IsQuantized: true }).ToList();
        Assert.That(quantised, Has.Count.GreaterThan(4));
        // The Linears in d, the tables and the head in the default for d (bf16 under int8 and nf4).
        Assert.That(quantised.All(m => ((IQuantizableWeight)m.Value).QuantizedWeight!.DType
            == (m.Value is Embedding || m.Key.EndsWith("lm_head", StringComparison.Ordinal)
                ? HfModel.DefaultEmbeddingDType(d) : d)));
    }

    [Test]
    public void AWeightFileBehindALinkIsKeyedByItsTarget()
    {
        using var dir = Copy("gpt2-tiny");
        // As a Hub cache's snapshot: the folder holds a link, the bytes live elsewhere.
        string blob = Path.Combine(dir.Path, "blob.safetensors"), link = Path.Combine(dir.Path, "model.safetensors");
        File.Move(link, blob);
        File.CreateSymbolicLink(link, blob);
        Load(dir.Path, BaseDType.Nf4);
        byte[] bytes = File.ReadAllBytes(blob);
        bytes[^4] ^= 0x40;                                       // other weights, same length and header
        File.WriteAllBytes(blob, bytes);
        File.SetLastWriteTimeUtc(blob, DateTime.UtcNow.AddMinutes(1));
        var (_, warnings) = Load(dir.Path, BaseDType.Nf4);
        Assert.That(warnings, Has.Count.EqualTo(1).And.Some.Contain("model.safetensors changed"));
    }

    [Test]
    public void TablesInAnotherFormatHaveACacheOfTheirOwn([Values("gpt2-tiny", "llama-gqa-tied")] string name)
    {
        using var dir = Copy(name);
        var fresh = HfModel.Load(dir.Path, new HfLoadOptions { BaseDType = BaseDType.Nf4, QuantizedCache = false });
        var withNf4Tables = new HfLoadOptions { BaseDType = BaseDType.Nf4, EmbeddingDType = BaseDType.Nf4 };
        var ownFresh = HfModel.Load(dir.Path, withNf4Tables with { QuantizedCache = false });
        Load(dir.Path, BaseDType.Nf4);
        var warnings = new List<string>();
        HfModel.Load(dir.Path, withNf4Tables with { Warning = warnings.Add });
        string own = Path.Combine(dir.Path, ".lora-managed", "quantized-nf4-tables-nf4.bin");
        Assert.That(File.Exists(own) && File.Exists(CachePath(dir.Path, BaseDType.Nf4)), "one cache per format pair");
        var cached = HfModel.Load(dir.Path, withNf4Tables with { Warning = warnings.Add });
        Assert.That(warnings, Is.Empty, "neither cache was taken for the other");
        Assert.That(Logits(cached, name), Is.EqualTo(Logits(ownFresh, name)), "bitwise");
        Assert.That(Logits(cached, name), Is.Not.EqualTo(Logits(fresh, name)), "nf4 tables differ from bf16 ones");
    }

    [Test]
    public void TheCacheIsReadInsteadOfTheQuantisedTensors([Values("gpt2-tiny", "llama-gqa-tied")] string name)
    {
        using var dir = Copy(name);
        var (original, _) = Load(dir.Path, BaseDType.Nf4);
        float[] expected = Logits(original, name);
        // Overwrite every quantised tensor's bytes in the file but keep its length, header and time: the key still
        // matches, so a load that read those tensors would compute something else.
        var quantised = original.NamedModules().Where(m => m.Value is IQuantizableWeight { IsQuantized: true })
            .Select(m => m.Key + ".weight").ToHashSet();
        string file = Path.Combine(dir.Path, "model.safetensors");
        DateTime time = File.GetLastWriteTimeUtc(file);
        int overwritten = OverwriteTensors(file,
            n => quantised.Contains(n) || quantised.Contains("transformer." + n) || quantised.Contains("model." + n));
        Assert.That(overwritten, Is.EqualTo(quantised.Count));
        File.SetLastWriteTimeUtc(file, time);

        var (uncached, _) = Load(dir.Path, BaseDType.Nf4, cache: false);
        Assert.That(Logits(uncached, name), Is.Not.EqualTo(expected), "the overwritten tensors matter");
        var (cached, warnings) = Load(dir.Path, BaseDType.Nf4);
        Assert.That(warnings, Is.Empty);
        Assert.That(Logits(cached, name), Is.EqualTo(expected), "the quantised weights came from the cache");
    }

    public static IEnumerable<TestCaseData> Damages()
    {
        yield return Damage("Truncated", p => Truncate(p, 0.5), "truncated");
        yield return Damage("TruncatedHeader", p => Truncate(p, 8.0 / new FileInfo(p).Length), "truncated (8 bytes)");
        yield return Damage("FlippedByte", p => Patch(p, 0.6, b => (byte)(b ^ 0x10)), "checksum mismatch");
        yield return Damage("FlippedHeaderByte", p => Patch(p, 40.0, b => (byte)(b ^ 0x01)), "checksum mismatch");
        yield return Damage("OtherVersion", p => SetVersion(p, 2), "format version 2, this build reads 1");
        yield return Damage("WrongMagic", p => Patch(p, 2.0, b => (byte)'X'), "not a quantised-weight cache");
        yield return Damage("Extended", p => File.AppendAllText(p, "x"), "bytes where its header says");
    }

    private static TestCaseData Damage(string name, Action<string> damage, string reason) =>
        new TestCaseData(damage, reason).SetName(name);

    private static string[] Warned(string path, string reason) => [$"warning: {path}: {reason}; rebuilding"];


    [TestCaseSource(nameof(Damages))]
    public void ADamagedCacheIsRebuiltWithOneLineAndNeverUsed(Action<string> damage, string reason)
    {
        using var dir = Copy("gpt2-tiny");
        var (fresh, _) = Load(dir.Path, BaseDType.Int8, cache: false);
        Load(dir.Path, BaseDType.Int8);
        string path = CachePath(dir.Path, BaseDType.Int8);
        damage(path);
        var (model, warnings) = Load(dir.Path, BaseDType.Int8);
        Assert.That(warnings, Has.Count.EqualTo(1));
        Assert.That(warnings[0], Does.StartWith($"warning: {path}: ").And.Contain(reason).And.EndWith("; rebuilding")
            .And.Not.Contain("\n"));
        Assert.That(Logits(model, "gpt2-tiny"), Is.EqualTo(Logits(fresh, "gpt2-tiny")));
        Assert.That(Load(dir.Path, BaseDType.Int8).Warnings, Is.Empty, "rebuilt");
        Assert.That(QuantizedWeightCache.Read(path).Entries, Is.Not.Empty);
    }

    [Test]
    public void AnEmptyCacheIsRefusedNotReadNorReplaced()
    {
        using var dir = Copy("gpt2-tiny");
        string path = CachePath(dir.Path, BaseDType.Nf4);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, []); // what a FIFO or a device also looks like: reading it could block forever
        var (model, warnings) = Load(dir.Path, BaseDType.Nf4);
        string expected = $"warning: {path}: empty or not a regular file; not used, and not replaced (remove it)";
        Assert.That(warnings, Is.EqualTo(new[] { expected }));
        Assert.That(new FileInfo(path).Length, Is.Zero);
        var fresh = Load(dir.Path, BaseDType.Nf4, cache: false).Model;
        Assert.That(Logits(model, "gpt2-tiny"), Is.EqualTo(Logits(fresh, "gpt2-tiny")));
    }

    [Test]
    public void AStaleCacheIsRebuiltWhenAWeightFileOrTheConfigChanges()
    {
        using var dir = Copy("gpt2-tiny");
        Load(dir.Path, BaseDType.Nf4);
        string file = Path.Combine(dir.Path, "model.safetensors"), path = CachePath(dir.Path, BaseDType.Nf4);
        // New values in a quantised tensor (same length and header): the file's time changes, so the cache is stale.
        OverwriteTensors(file, n => n == "h.0.attn.c_attn.weight");
        File.SetLastWriteTimeUtc(file, File.GetLastWriteTimeUtc(file).AddSeconds(2));
        var (model, warnings) = Load(dir.Path, BaseDType.Nf4);
        Assert.That(warnings, Is.EqualTo(Warned(path, "stale: model.safetensors changed")));
        var (fresh, _) = Load(dir.Path, BaseDType.Nf4, cache: false);
        Assert.That(Logits(model, "gpt2-tiny"), Is.EqualTo(Logits(fresh, "gpt2-tiny")),
            "the new values, not the cached ones");
        Assert.That(Load(dir.Path, BaseDType.Nf4).Warnings, Is.Empty);

        // Only the time changes (touch): still stale.
        File.SetLastWriteTimeUtc(file, File.GetLastWriteTimeUtc(file).AddSeconds(2));
        Assert.That(Load(dir.Path, BaseDType.Nf4).Warnings,
            Is.EqualTo(Warned(path, "stale: model.safetensors changed")));

        string config = Path.Combine(dir.Path, "config.json");
        File.AppendAllText(config, "\n");
        Assert.That(Load(dir.Path, BaseDType.Nf4).Warnings, Is.EqualTo(Warned(path, "stale: config.json changed")));
        Assert.That(Load(dir.Path, BaseDType.Nf4).Warnings, Is.Empty);
    }

    [Test]
    public void ACacheOfAnotherDTypeOrModelIsNotUsed()
    {
        using var dir = Copy("gpt2-tiny");
        using var other = Copy("llama-gqa-tied");
        Load(dir.Path, BaseDType.Int8);
        string path = CachePath(dir.Path, BaseDType.Nf4);
        File.Copy(CachePath(dir.Path, BaseDType.Int8), path);
        Assert.That(Load(dir.Path, BaseDType.Nf4).Warnings, Is.EqualTo(Warned(path, "made for Int8, loading Nf4")));
        // Another model's cache put in its place.
        Load(other.Path, BaseDType.Nf4);
        File.Copy(CachePath(other.Path, BaseDType.Nf4), path, overwrite: true);
        var warnings = Load(dir.Path, BaseDType.Nf4).Warnings;
        Assert.That(warnings, Has.Count.EqualTo(1));
        Assert.That(warnings[0], Does.Contain("stale: config.json changed"));
    }

    [Test]
    public void AReadOnlyModelFolderPutsTheCacheUnderTheCacheRoot()
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Ignore("read-only by Unix mode");
            return;
        }
        using var dir = Copy("llama-gqa-tied");
        using var root = new HfFixtures.TempDir();
        var mode = File.GetUnixFileMode(dir.Path);
        File.SetUnixFileMode(dir.Path, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead
            | UnixFileMode.GroupExecute);
        try
        {
            string path = QuantizedWeightCache.PathFor(dir.Path, BaseDType.Nf4, root.Path);
            Assert.That(path, Does.StartWith(Path.Combine(root.Path, Path.GetFileName(dir.Path)) + "-"));
            Assert.That(Path.GetFileName(path), Is.EqualTo("quantized-nf4.bin"));
            var (first, w1) = Load(dir.Path, BaseDType.Nf4, root: root.Path);
            Assert.That(File.Exists(path));
            Assert.That(Directory.Exists(Path.Combine(dir.Path, ".lora-managed")), Is.False,
                "nothing written beside the model");
            DateTime written = File.GetLastWriteTimeUtc(path);
            var (second, w2) = Load(dir.Path, BaseDType.Nf4, root: root.Path);
            Assert.That(w1.Concat(w2), Is.Empty);
            Assert.That(File.GetLastWriteTimeUtc(path), Is.EqualTo(written), "read, not rewritten");
            Assert.That(Logits(second, "llama-gqa-tied"), Is.EqualTo(Logits(first, "llama-gqa-tied")));
        }
        finally { File.SetUnixFileMode(dir.Path, mode); }
        Assert.That(QuantizedWeightCache.PathFor(dir.Path, BaseDType.Nf4, root.Path),
            Is.EqualTo(CachePath(dir.Path, BaseDType.Nf4)), "writable again: beside the model");
        // An explicit path overrides the rule.
        string chosen = Path.Combine(root.Path, "mine.bin");
        var warnings = new List<string>();
        HfModel.Load(dir.Path,
            new HfLoadOptions { BaseDType = BaseDType.Int8, QuantizedCachePath = chosen, Warning = warnings.Add });
        Assert.That(QuantizedWeightCache.Read(chosen).DType, Is.EqualTo(BaseDType.Int8));
        Assert.That(warnings, Is.Empty);
    }

    [Test]
    public void AWriteThatFailsHalfWayLeavesNoCache()
    {
        using var dir = Copy("gpt2-tiny");
        Load(dir.Path, BaseDType.Nf4);
        string path = CachePath(dir.Path, BaseDType.Nf4);
        var contents = QuantizedWeightCache.Read(path);
        byte[] good = File.ReadAllBytes(path);
        string other = Path.Combine(dir.Path, ".lora-managed", "other.bin");
        // The process "dies" (an exception) after 1000 bytes: no file appears, and an existing cache is untouched.
        Assert.Throws<IOException>(() =>
            QuantizedWeightCache.Write(other, contents, s => new IO.FailingStream(s, 1000)));
        Assert.Throws<IOException>(() =>
            QuantizedWeightCache.Write(path, contents, s => new IO.FailingStream(s, 1000)));
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(path)!), Is.EqualTo(new[] { path }),
            "no temporary file left");
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(good));
        // What a killed writer leaves is a hidden temporary file, which no load reads.
        string leftover = Path.Combine(dir.Path, ".lora-managed", ".quantized-nf4.bin.0123.tmp");
        File.WriteAllBytes(leftover, good.AsSpan(0, 500).ToArray());
        File.Delete(path);
        var (_, warnings) = Load(dir.Path, BaseDType.Nf4);
        Assert.That(warnings, Is.Empty);
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(good), "rebuilt the same, deterministically");
    }

    [Test]
    public void LoadsRacingToWriteTheCacheLeaveOneValidCache()
    {
        using var dir = Copy("gpt2-tiny");
        var (fresh, _) = Load(dir.Path, BaseDType.Nf4, cache: false);
        var results = new (CausalLm Model, List<string> Warnings)[4];
        Parallel.For(0, results.Length, i => results[i] = Load(dir.Path, BaseDType.Nf4));
        float[] expected = Logits(fresh, "gpt2-tiny");
        foreach (var (model, warnings) in results)
        {
            Assert.That(warnings, Is.Empty);
            Assert.That(Logits(model, "gpt2-tiny"), Is.EqualTo(expected));
        }
        string path = CachePath(dir.Path, BaseDType.Nf4);
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(path)!), Is.EqualTo(new[] { path }));
        Assert.That(QuantizedWeightCache.Read(path).Float32Checksum, Is.EqualTo(fresh.Float32Checksum));
    }

    [Test]
    public void CliWarnsOnStderrAndNoQuantCacheSkipsTheCache()
    {
        using var dir = Copy(HfFixtures.Stories260K);
        string text = Path.Combine(dir.Path, "story.txt");
        File.WriteAllText(text, "Once upon a time, there was a little girl named Lily. She loved to play outside.\n");
        string path = CachePath(dir.Path, BaseDType.Nf4);
        var off = LoraCli.Run("lm-eval", "--model", dir.Path, "--data", text, "--base-dtype", "nf4",
            "--no-quant-cache");
        Assert.That(off.Code, Is.EqualTo(0), off.Err);
        Assert.That(File.Exists(path), Is.False);
        var first = LoraCli.Run("lm-eval", "--model", dir.Path, "--data", text, "--base-dtype", "nf4");
        Assert.That((first.Code, first.Err), Is.EqualTo((0, "")));
        Assert.That(first.Out, Is.EqualTo(off.Out));
        Patch(path, 0.5, b => (byte)~b);
        var damaged = LoraCli.Run("lm-eval", "--model", dir.Path, "--data", text, "--base-dtype", "nf4");
        Assert.That(damaged.Code, Is.EqualTo(0), damaged.Err);
        Assert.That(damaged.Err, Is.EqualTo($"warning: {path}: checksum mismatch; rebuilding\n"));
        Assert.That(damaged.Out, Is.EqualTo(off.Out));
        var generate = LoraCli.Run("generate", "--model", dir.Path, "--prompt", "Once", "--base-dtype", "nf4",
            "--max-new-tokens", "4");
        Assert.That((generate.Code, generate.Err), Is.EqualTo((0, "")));
        // lm-finetune reports through its observer, to stderr as well.
        Truncate(path, 0.5);
        var tune = LoraCli.Run("lm-finetune", "--model", dir.Path, "--data", text, "--base-dtype", "nf4",
            "--steps", "1", "--targets", "q_proj", "--context", "16", "--batch-size", "1",
            "--out", Path.Combine(dir.Path, "adapter"));
        Assert.That(tune.Code, Is.EqualTo(0), tune.Err);
        Assert.That(tune.Err, Does.StartWith($"warning: {path}: truncated"));
        Assert.That(tune.Out, Does.Not.Contain("warning"));
    }

    /// <summary>Overwrites the data of the tensors <paramref name="which"/> selects (by stored name) with other
    /// values, keeping the file's length and header; returns how many.</summary>
    internal static int OverwriteTensors(string file, Func<string, bool> which)
    {
        byte[] bytes = File.ReadAllBytes(file);
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        using var header = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        int count = 0;
        foreach (var tensor in header.RootElement.EnumerateObject())
        {
            if (tensor.Name == "__metadata__" || !which(tensor.Name)) continue;
            var offsets = tensor.Value.GetProperty("data_offsets");
            long start = 8 + headerLength + offsets[0].GetInt64(), end = 8 + headerLength + offsets[1].GetInt64();
            // A smooth ramp of small values, valid in any float dtype's high byte.
            for (long i = start; i < end; i++) bytes[i] = (byte)(i % 2 == 1 ? 0x3C : (i * 7) & 0xFF);
            count++;
        }
        File.WriteAllBytes(file, bytes);
        return count;
    }

    private static void Truncate(string path, double fraction)
    {
        using var f = new FileStream(path, FileMode.Open);
        f.SetLength((long)(f.Length * fraction));
    }

    // Changes the byte at a fraction of the file (≤ 1) or at an absolute offset (> 1).
    private static void Patch(string path, double where, Func<byte, byte> change)
    {
        byte[] b = File.ReadAllBytes(path);
        int at = where > 1 ? (int)where : Math.Min(b.Length - 1, (int)(b.Length * where));
        b[at] = change(b[at]);
        File.WriteAllBytes(path, b);
    }

    private static void SetVersion(string path, int version)
    {
        byte[] b = File.ReadAllBytes(path);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(8), version);
        File.WriteAllBytes(path, b);
    }
}
