using System.Text.Json;
using LoRA.Managed.Cli;
using LoRA.Managed.Cli.Bench;
using LoRA.Managed.Kernels;

namespace LoRA.Managed.Tests.Cli;

/// <summary><c>lora bench</c> in-process with a tiny time budget: the JSON's keys and types, not the speed.</summary>
[NonParallelizable] // QuickBench sets ComputeThreads.Max while it runs
public class BenchCommandTests
{
    [Test]
    public void WritesTheJsonKeysWithTheirTypes()
    {
        string dir = Path.Combine(Path.GetTempPath(), "lora-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        int saved = ComputeThreads.Max;
        try
        {
            string json = Path.Combine(dir, "bench.json");
            var output = new StringWriter();
            var error = new StringWriter();
            int code = Program.Run(["bench", "--threads", "1", "--seconds", "0.001", "--json", json], output, error);
            Assert.That(code, Is.Zero, error.ToString());
            Assert.That(output.ToString(), Does.Contain("GFLOP/s").And.Contain("train step"));
            Assert.That(ComputeThreads.Max, Is.EqualTo(saved), "the thread count is restored");

            using var doc = JsonDocument.Parse(File.ReadAllText(json));
            JsonElement root = doc.RootElement;
            Assert.That(root.GetProperty("threads").GetInt32(), Is.EqualTo(1));
            Assert.That(root.GetProperty("train_step_ms").GetDouble(), Is.GreaterThan(0));
            Assert.That(root.GetProperty("lora_step_ms").GetDouble(), Is.GreaterThan(0));
            Assert.That(root.GetProperty("allocated_bytes_per_step").ValueKind, Is.EqualTo(JsonValueKind.Number));
            Assert.That(root.GetProperty("allocated_bytes_per_step").GetInt64(), Is.GreaterThanOrEqualTo(0));
            AssertThePeakFigures(root, threads: 1);
            foreach (string key in new[] { "train_step_speedup_vs_one_thread", "gpt_step_speedup_vs_one_thread" })
                Assert.That(root.GetProperty(key).ValueKind, Is.EqualTo(JsonValueKind.Null),
                    $"{key}: one thread has nothing to compare with");
            Assert.That(output.ToString(), Does.Contain("FMA peak, 1 thread at once").And.Contain("of that peak"));
            JsonElement gemm = root.GetProperty("gemm");
            Assert.That(gemm.GetArrayLength(), Is.EqualTo(LoRA.Managed.Cli.Bench.QuickBench.Shapes().Count));
            foreach (JsonElement g in gemm.EnumerateArray())
            {
                foreach (string key in new[] { "m", "k", "n" })
                    Assert.That(g.GetProperty(key).GetInt32(), Is.GreaterThan(0), key);
                foreach (string key in new[] { "trans_a", "trans_b" })
                    Assert.That(g.GetProperty(key).ValueKind, Is.AnyOf(JsonValueKind.True, JsonValueKind.False), key);
                foreach (string key in new[] { "gflops", "gflops_naive" })
                    Assert.That(g.GetProperty(key).GetDouble(), Is.GreaterThan(0).And.LessThan(1e6), key);
            }
            // The first shape is the MLP's forward product, B transposed.
            JsonElement first = gemm[0];
            Assert.That((first.GetProperty("m").GetInt32(), first.GetProperty("k").GetInt32(),
                first.GetProperty("n").GetInt32(), first.GetProperty("trans_b").GetBoolean()),
                Is.EqualTo((64, 784, 512, true)));
        }
        finally
        {
            ComputeThreads.Max = saved;
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void OnTwoThreadsReportsTheTwoCorePeakAndTheSpeedUp()
    {
        string json = Path.Combine(Path.GetTempPath(), "lora-bench-" + Guid.NewGuid().ToString("N") + ".json");
        int saved = ComputeThreads.Max;
        try
        {
            var output = new StringWriter();
            var error = new StringWriter();
            int code = Program.Run(["bench", "--threads", "2", "--seconds", "0.001", "--json", json], output, error);
            Assert.That(code, Is.Zero, error.ToString());
            using var doc = JsonDocument.Parse(File.ReadAllText(json));
            JsonElement root = doc.RootElement;
            Assert.That(root.GetProperty("threads").GetInt32(), Is.EqualTo(2));
            AssertThePeakFigures(root, threads: 2);
            foreach (string key in new[] { "train_step_speedup_vs_one_thread", "gpt_step_speedup_vs_one_thread" })
                Assert.That(root.GetProperty(key).GetDouble(), Is.GreaterThan(0).And.LessThan(100), key);
            Assert.That(output.ToString(), Does.Contain("FMA peak, 2 threads at once")
                .And.Contain("train step, 2 threads against 1").And.Contain("lm-demo GPT step, 2 threads against 1"));
        }
        finally
        {
            ComputeThreads.Max = saved;
            File.Delete(json);
        }
    }

    // The peak is measured, so only its consistency can be held: the step's GFLOP/s is the step's flops over its
    // median time, and the fraction is that over the peak.
    private static void AssertThePeakFigures(JsonElement root, int threads)
    {
        double peak = root.GetProperty("fma_peak_gflops").GetDouble();
        Assert.That(peak, Is.GreaterThan(0).And.LessThan(1e6));
        Assert.That(root.GetProperty("vector_bits").GetInt32(), Is.AnyOf(128, 256, 512));
        Assert.That(root.GetProperty("vector_bits").GetInt32(), Is.EqualTo(FmaPeak.VectorBits));
        double ms = root.GetProperty("train_step_ms").GetDouble(), gflops = root.GetProperty("train_step_gflops")
            .GetDouble();
        Assert.That(gflops, Is.EqualTo(QuickBench.TrainStepFlops / (ms * 1e-3) / 1e9).Within(1e-9).Percent);
        Assert.That(root.GetProperty("train_step_peak_fraction").GetDouble(), Is.EqualTo(gflops / peak)
            .Within(1e-9).Percent);
        Assert.That(threads, Is.EqualTo(root.GetProperty("threads").GetInt32()));
    }

    [Test]
    public void TheStepsFlopsAreTheProductsOfTheBlogMlp()
    {
        // Forward and weight gradient of 784→512, 512→256, 256→10 at batch 64, and the input gradients of the last
        // two: the 154 MFLOP of docs/07 (issue 20's 580 GFLOP over 3,770 steps).
        double macs = 64.0 * (2 * 784 * 512 + 3 * 512 * 256 + 3 * 256 * 10);
        Assert.That(QuickBench.TrainStepFlops, Is.EqualTo(2 * macs));
        Assert.That(QuickBench.TrainStepFlops, Is.EqualTo(154_075_136));
    }

    [Test]
    public void TheFmaPeakOfTwoThreadsIsMeasuredOnBoth()
    {
        // Tiny runs: the value is the machine's; what is held is that it is a positive rate for each count.
        Assert.That(FmaPeak.Measure(1, iterations: 1 << 12, repetitions: 2), Is.GreaterThan(0));
        Assert.That(FmaPeak.Measure(2, iterations: 1 << 12, repetitions: 2), Is.GreaterThan(0));
        Assert.That(() => FmaPeak.Measure(0), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void RefusesANonPositiveTimeBudget()
    {
        var error = new StringWriter();
        int code = Program.Run(["bench", "--seconds", "0"], new StringWriter(), error);
        Assert.That(code, Is.EqualTo(Program.ErrorExitCode));
        Assert.That(error.ToString(), Does.Contain("--seconds"));
    }
}
