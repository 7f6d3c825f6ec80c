using System.Text.Json;
using LoRA.Managed.Cli;
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
    public void RefusesANonPositiveTimeBudget()
    {
        var error = new StringWriter();
        int code = Program.Run(["bench", "--seconds", "0"], new StringWriter(), error);
        Assert.That(code, Is.EqualTo(Program.ErrorExitCode));
        Assert.That(error.ToString(), Does.Contain("--seconds"));
    }
}
