using System.Text.Json;
using LoRA.Managed.Cli;
using LoRA.Managed.Data;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tests.Data;

namespace LoRA.Managed.Tests.Cli;

[NonParallelizable] // sets the data, cache and npm environment variables and ComputeThreads.Max
public class CliTests
{
    private IdxTestFiles _files = null!;
    private readonly Dictionary<string, string?> _saved = [];
    private int _savedThreads;

    private static readonly string[] Variables = [MnistFiles.DataEnvironmentVariable,
        MnistFetcher.NpmEnvironmentVariable, "XDG_CACHE_HOME"];

    [SetUp]
    public void SetUp()
    {
        _files = new IdxTestFiles();
        foreach (string v in Variables) _saved[v] = Environment.GetEnvironmentVariable(v);
        _savedThreads = ComputeThreads.Max;
        // Hermetic: no data directory, an empty cache, and an npm that does not exist.
        Environment.SetEnvironmentVariable(MnistFiles.DataEnvironmentVariable, null);
        Environment.SetEnvironmentVariable("XDG_CACHE_HOME", _files.PathOf("cache"));
        Environment.SetEnvironmentVariable(MnistFetcher.NpmEnvironmentVariable, _files.PathOf("no-such-npm"));
    }

    [TearDown]
    public void TearDown()
    {
        foreach (var (v, value) in _saved) Environment.SetEnvironmentVariable(v, value);
        ComputeThreads.Max = _savedThreads;
        _files.Dispose();
    }

    private static (int Code, string Out, string Err) Lora(params string[] args) => LoraCli.Run(args);

    private static void AssertOneLineError((int Code, string Out, string Err) run, params string[] fragments)
    {
        Assert.That(run.Code, Is.EqualTo(2), run.Err);
        string[] lines = run.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), run.Err);
        Assert.That(lines[0], Does.StartWith("lora: "));
        foreach (string f in fragments) Assert.That(lines[0], Does.Contain(f));
    }

    [TestCase(new string[0], "train", "demo")]
    [TestCase(new[] { "train" }, "--digits", "--batch-size", "--normalize")]
    [TestCase(new[] { "demo" }, "--lora-epochs", "--init", "--scaling", "--targets", "--rank")]
    public void HelpWorksOnEveryCommand(string[] command, params string[] mentions)
    {
        var run = Lora([.. command, "--help"]);
        Assert.That(run.Code, Is.EqualTo(0), run.Err);
        Assert.That(run.Err, Is.Empty);
        foreach (string m in mentions) Assert.That(run.Out, Does.Contain(m));
    }

    [TestCase("7-0", "backwards")]
    [TestCase("0-10", "range '0-10'")]
    [TestCase("x", "'x' is not a digit")]
    [TestCase("", "empty")]
    public void BadDigitSetsExitWith2(string digits, string fragment) =>
        AssertOneLineError(Lora("train", "--digits", digits), "--digits", fragment);

    [Test]
    public void MissingRequiredDigits() => AssertOneLineError(Lora("train"), "--digits");

    [Test]
    public void UnknownInitAndScaling()
    {
        AssertOneLineError(Lora("demo", "--init", "foo"), "--init", "foo", "svd", "pissa", "default");
        AssertOneLineError(Lora("demo", "--scaling", "half"), "--scaling", "half");
    }

    [Test]
    public void BadNumbersAndTargets()
    {
        AssertOneLineError(Lora("train", "--digits", "0-7", "--epochs", "0"), "--epochs", "at least 1");
        AssertOneLineError(Lora("train", "--digits", "0-7", "--epochs", "many"), "--epochs", "many");
        AssertOneLineError(Lora("train", "--digits", "0-7", "--lr", "-1"), "--lr");
        AssertOneLineError(Lora("demo", "--threads", "0"), "--threads");
        // Targets are checked against the real model (once, in LoraModel.Validate), before any training.
        string data = _files.PathOf("mnist");
        _files.WriteMnist(data, side: 28, train: 40, test: 20);
        var bad = Lora("demo", "--targets", "layers.2", "--data", data);
        AssertOneLineError(bad, "target module", "layers.2", "layers.1, layers.3, layers.5");
        Assert.That(bad.Out, Does.Not.Contain("epoch 1/"), "refused before phase 1");
        AssertOneLineError(Lora("train", "--digits", "0-7", "--bogus"), "--bogus");
    }

    [Test]
    public void MissingDataWithoutNpmNamesTheFilesAndTheDirectory()
    {
        string missing = _files.PathOf("no-such-dir");
        var run = Lora("train", "--digits", "0-7", "--data", missing);
        AssertOneLineError(run, missing, "train-images-idx3-ubyte", "t10k-labels-idx1-ubyte");
        // An explicit --data is not a hint: no fallback to the cache, no fetch (issue 18).
        Assert.That(run.Err, Does.Not.Contain(Path.Combine(_files.PathOf("cache"), "lora-managed", "mnist")));
        Assert.That(run.Err, Does.Not.Contain("   at "), "no stack trace without --verbose");
    }

    [Test]
    public void CorruptFileIsOneLineAndVerboseAddsTheStackTrace()
    {
        string dir = _files.PathOf("mnist");
        _files.WriteMnist(dir, side: 28, train: 30, test: 10);
        string labels = Path.Combine(dir, MnistFiles.TestLabelsName);
        File.WriteAllBytes(labels, File.ReadAllBytes(labels)[..^3]);

        AssertOneLineError(Lora("train", "--digits", "0-9", "--data", dir), MnistFiles.TestLabelsName, "item count");
        var verbose = Lora("train", "--digits", "0-9", "--data", dir, "--verbose");
        Assert.That(verbose.Code, Is.EqualTo(2));
        Assert.That(verbose.Err, Does.Contain("IdxFormatException").And.Contain("   at "));
    }

    [Test]
    public void TrainRunsEndToEndOnSyntheticMnist()
    {
        string dir = _files.PathOf("mnist"), json = _files.PathOf("train.json");
        _files.WriteMnist(dir, gzip: true, side: 28, train: 70, test: 30);
        int threadsBefore = ComputeThreads.Max;
        var run = Lora("train", "--digits", "0-4", "--epochs", "2", "--batch-size", "16", "--threads", "1",
            "--data", dir, "--normalize", "--json", json);

        Assert.That(run.Code, Is.EqualTo(0), run.Err);
        Assert.That(run.Out, Does.Contain("epoch 1/2").And.Contain("epoch 2/2").And.Contain("accuracy"));
        Assert.That(run.Out, Does.Not.Contain("\u001b["), "no ANSI codes when output is redirected");
        Assert.That(ComputeThreads.Max, Is.EqualTo(threadsBefore), "--threads is scoped to the command");

        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        JsonElement root = doc.RootElement;
        // test labels 9 − i mod 10: 0..4 three times each
        Assert.That(root.GetProperty("count").GetInt32(), Is.EqualTo(15));
        Assert.That(root.GetProperty("accuracy").GetDouble(), Is.InRange(0.0, 1.0));
        Assert.That(root.GetProperty("confusion").GetArrayLength(), Is.EqualTo(10));
        Assert.That(root.GetProperty("confusion").EnumerateArray().Sum(r => r.EnumerateArray().Sum(c => c.GetInt32())),
            Is.EqualTo(15));
        Assert.That(root.GetProperty("train_count").GetInt32(), Is.EqualTo(35));
        Assert.That(root.GetProperty("threads").GetInt32(), Is.EqualTo(1));
    }

    [Test]
    public void DemoWritesItsJsonKeys()
    {
        string dir = _files.PathOf("mnist"), json = _files.PathOf("demo.json");
        _files.WriteMnist(dir, side: 28, train: 40, test: 20);
        Environment.SetEnvironmentVariable(MnistFiles.DataEnvironmentVariable, dir);
        string outDir = _files.PathOf("run");
        var run = Lora("demo", "--epochs", "1", "--lora-epochs", "1", "--seed", "3", "--threads", "1", "--json", json,
            "--out", outDir);

        Assert.That(run.Code, Is.EqualTo(0), run.Err);
        Assert.That(run.Out,
            Does.Contain("base model, accuracy on test 0-7").And.Contain("0.9808").And.Contain("0.9516"));
        Assert.That(run.Out, Does.Contain("trainable params: 1,064 || all params: 536,882 || trainable%: 0.1982"));
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        JsonElement root = doc.RootElement;
        string[] keys = ["base_acc_0to7", "base_acc_89", "lora_acc_89", "lora_acc_0to7", "base_trainable_params",
            "lora_trainable_params", "lora_trainable_percent", "seconds_load", "seconds_base_train",
            "seconds_lora_train", "seconds_total", "base_train_gflop", "base_train_gflops", "seed", "threads"];
        Assert.That(root.EnumerateObject().Select(p => p.Name), Is.EquivalentTo(keys));
        // One epoch of the 32 training images of 0-7: half a batch of 64's products.
        Assert.That(root.GetProperty("base_train_gflop").GetDouble(),
            Is.EqualTo(32 * LoRA.Managed.Cli.Bench.QuickBench.TrainStepFlops / 64 / 1e9).Within(1e-12));
        Assert.That(root.GetProperty("base_train_gflops").GetDouble(), Is.EqualTo(
            root.GetProperty("base_train_gflop").GetDouble() / root.GetProperty("seconds_base_train").GetDouble())
            .Within(1e-9).Percent);
        Assert.That(run.Out, Does.Contain("GFLOP of products in"));
        Assert.That(root.GetProperty("base_trainable_params").GetInt64(), Is.EqualTo(535_818));
        Assert.That(root.GetProperty("lora_trainable_params").GetInt64(), Is.EqualTo(1_064));
        Assert.That(root.GetProperty("lora_trainable_percent").GetDouble(),
            Is.EqualTo(100.0 * 1064 / 535818).Within(1e-9));
        foreach (string file in new[] { "base_model.safetensors", "adapter/adapter_model.safetensors",
            "adapter/adapter_config.json", "losses.csv", "loss_curve.svg" })
            Assert.That(File.Exists(Path.Combine(outDir, file)), Is.True, file);
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "adapter/adapter_config.json")));
        // Trained with scale α = 1 at r = 4; PEFT computes lora_alpha / r, so the file must say 4.
        Assert.That(config.RootElement.GetProperty("lora_alpha").GetDouble(), Is.EqualTo(4.0));
        Assert.That(File.ReadAllLines(Path.Combine(outDir, "losses.csv")).Length, Is.EqualTo(1 + 1 + 1),
            "header, one base step (32 samples), one LoRA step (8 samples)");
        Assert.That(root.GetProperty("base_acc_89").GetDouble(), Is.EqualTo(0.0),
            "trained on 0-7 only, so the logits of 8 and 9 are only ever pushed down");
        Assert.That(root.GetProperty("seed").GetInt32(), Is.EqualTo(3));
        Assert.That(root.GetProperty("threads").GetInt32(), Is.EqualTo(1));
    }

    [Test]
    public void JsonIntoAMissingDirectoryFails()
    {
        string dir = _files.PathOf("mnist");
        _files.WriteMnist(dir, side: 28, train: 10, test: 10);
        AssertOneLineError(Lora("train", "--digits", "0-9", "--epochs", "1", "--data", dir, "--json",
            _files.PathOf("nope/out.json")), "nope");
    }
}
