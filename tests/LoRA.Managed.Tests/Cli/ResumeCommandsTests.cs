using LoRA.Managed.Cli;
using LoRA.Managed.Data;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tests.Data;

namespace LoRA.Managed.Tests.Cli;

/// <summary>
/// <c>lora train</c> and <c>lora finetune</c> interrupted (the test-only <c>--test-stop-after-steps</c> cancels exactly as
/// Ctrl+C does) and resumed write the same bytes as uninterrupted runs.
/// </summary>
public class ResumeCommandsTests : MnistCliFixture
{
    private string _data = null!;

    [SetUp]
    public void SetUp()
    {
        _data = Files.PathOf("mnist");
        Files.WriteMnist(_data, side: 28, train: 120, test: 20);
    }

    private string[] TrainArgs(string output, params string[] more) =>
        ["train", "--digits", "0-7", "--epochs", "2", "--batch-size", "16", "--seed", "5", "--data", _data, "--threads", "1", "--out", output, .. more];

    private static void AssertInterrupted((int Code, string Out, string Err) run, string checkpoint)
    {
        Assert.That(run.Code, Is.EqualTo(CheckpointOptions.InterruptedExitCode), run.Err);
        Assert.That(run.Err.TrimEnd().Split('\n'), Has.Length.EqualTo(1), run.Err);
        Assert.That(run.Err, Does.StartWith("lora: interrupted after step").And.Contain(checkpoint));
    }

    [Test]
    public void InterruptedAndResumedTrainWritesTheSameModelBytes()
    {
        string a = Files.PathOf("a.safetensors"), b = Files.PathOf("b.safetensors");
        var full = Lora(TrainArgs(a));
        Assert.That(full.Code, Is.EqualTo(0), full.Err);

        // Checkpoints every 3 steps; "Ctrl+C" after step 7 saves checkpoint-7 too. The default folder is next to --out.
        string dir = Files.PathOf("b.checkpoints");
        var stopped = Lora(TrainArgs(b, "--checkpoint-every", "3", "--test-stop-after-steps", "7"));
        AssertInterrupted(stopped, Path.Combine(dir, "checkpoint-7"));
        Assert.That(File.Exists(b), Is.False, "no model is written by an interrupted run");
        Assert.That(Directory.GetDirectories(dir).Select(Path.GetFileName), Is.EquivalentTo(new[] { "checkpoint-3", "checkpoint-6", "checkpoint-7" }));

        byte[] expected = File.ReadAllBytes(a);
        foreach (string checkpoint in new[] { "checkpoint-6", "checkpoint-7" })
        {
            var resumed = Lora(TrainArgs(b, "--resume", Path.Combine(dir, checkpoint)));
            Assert.That(resumed.Code, Is.EqualTo(0), resumed.Err);
            Assert.That(File.ReadAllBytes(b), Is.EqualTo(expected), $"model resumed from {checkpoint}");
            File.Delete(b);
        }
    }

    [Test]
    public void InterruptedAndResumedFinetuneWritesTheSameAdapterBytes()
    {
        string model = Files.PathOf("base.safetensors");
        Assert.That(Lora("train", "--digits", "0-7", "--epochs", "1", "--data", _data, "--threads", "1", "--out", model).Code, Is.EqualTo(0));
        string[] Args(string output, params string[] more) =>
            ["finetune", "--model", model, "--digits", "8,9", "--epochs", "2", "--batch-size", "8", "--data", _data, "--threads", "1", "--out", output, .. more];

        string a = Files.PathOf("adapter-a"), b = Files.PathOf("adapter-b"), dir = Files.PathOf("ck");
        Assert.That(Lora(Args(a)).Code, Is.EqualTo(0));
        var stopped = Lora(Args(b, "--checkpoint-dir", dir, "--test-stop-after-steps", "3"));
        AssertInterrupted(stopped, Path.Combine(dir, "checkpoint-3"));
        var resumed = Lora(Args(b, "--resume", Path.Combine(dir, "checkpoint-3")));
        Assert.That(resumed.Code, Is.EqualTo(0), resumed.Err);
        foreach (string file in new[] { "adapter_model.safetensors", "adapter_config.json" })
            Assert.That(File.ReadAllBytes(Path.Combine(b, file)), Is.EqualTo(File.ReadAllBytes(Path.Combine(a, file))), file);
    }

    [Test]
    public void CheckpointErrorsAreOneLineWithExitTwo()
    {
        string b = Files.PathOf("b.safetensors");
        Assert.That(Lora(TrainArgs(b, "--checkpoint-every", "2", "--test-stop-after-steps", "2")).Code, Is.EqualTo(CheckpointOptions.InterruptedExitCode));
        string checkpoint = Files.PathOf("b.checkpoints/checkpoint-2");

        var cases = new[]
        {
            (Run: Lora(TrainArgs(b, "--resume", Files.PathOf("nowhere"))), Says: "nowhere"),
            (Run: Lora("train", "--digits", "0-7", "--data", _data, "--checkpoint-every", "2"), Says: "--checkpoint-dir"),
            (Run: Lora(TrainArgs(b, "--checkpoint-every", "-1")), Says: "--checkpoint-every"),
            (Run: Lora(TrainArgs(b, "--resume", checkpoint).Select(a => a == "16" ? "8" : a).ToArray()), Says: "per_device_train_batch_size 16"),
        };
        foreach (var (run, says) in cases)
        {
            Assert.That(run.Code, Is.EqualTo(2), run.Err);
            Assert.That(run.Err.TrimEnd().Split('\n'), Has.Length.EqualTo(1), run.Err);
            Assert.That(run.Err, Does.Contain(says));
        }

        // Without --out or --checkpoint-dir an interruption still exits 130, saying nothing was kept.
        var bare = Lora("train", "--digits", "0-7", "--epochs", "1", "--data", _data, "--test-stop-after-steps", "1");
        Assert.That(bare.Code, Is.EqualTo(CheckpointOptions.InterruptedExitCode), bare.Err);
        Assert.That(bare.Err, Does.Contain("no checkpoint saved"));
    }
}
