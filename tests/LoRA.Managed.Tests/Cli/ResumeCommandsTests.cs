using LoRA.Managed.Cli;
using LoRA.Managed.Data;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tests.Data;

namespace LoRA.Managed.Tests.Cli;

/// <summary>
/// <c>lora train</c> and <c>lora finetune</c> interrupted (the run's token cancelled, as Ctrl+C, SIGTERM and SIGHUP do,
/// when the first epoch's line is printed) and resumed write the same bytes as uninterrupted runs.
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
        ["train", "--digits", "0-7", "--epochs", "2", "--batch-size", "16", "--seed", "5", "--data", _data, "--threads",
            "1", "--out", output, .. more];

    // Cancels when the first epoch's progress line is printed: the trainer then stops before the epoch's next step.
    private static (int Code, string Out, string Err) Interrupted(string[] args) =>
        LoraCli.Run(args, cancelOn: " epoch 1/2: loss");

    /// <summary>The step the run stopped after; the message must name <c>checkpoint-{step}</c> under
    /// <paramref name="dir"/>, which exists.</summary>
    private static int AssertInterrupted((int Code, string Out, string Err) run, string dir)
    {
        Assert.That(run.Code, Is.EqualTo(CheckpointOptions.InterruptedExitCode), run.Err);
        Assert.That(run.Err.TrimEnd().Split('\n'), Has.Length.EqualTo(1), run.Err);
        var match = System.Text.RegularExpressions.Regex.Match(run.Err,
            @"^lora: interrupted after step (\d+): checkpoint saved to (\S+);");
        Assert.That(match.Success, Is.True, run.Err);
        int step = int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(match.Groups[2].Value, Is.EqualTo(Path.Combine(Path.GetFullPath(dir), $"checkpoint-{step}")));
        Assert.That(Directory.Exists(match.Groups[2].Value), Is.True, "every 'saved to' is true");
        return step;
    }

    [Test]
    public void InterruptedAndResumedTrainWritesTheSameModelBytes()
    {
        string a = Files.PathOf("a.safetensors"), b = Files.PathOf("b.safetensors");
        var full = Lora(TrainArgs(a));
        Assert.That(full.Code, Is.EqualTo(0), full.Err);

        // Checkpoints every 4 steps; "Ctrl+C" at the end of epoch 1 (6 steps) saves that step too. The default folder
        // is next to --out.
        string dir = Files.PathOf("b.checkpoints");
        int step = AssertInterrupted(Interrupted(TrainArgs(b, "--checkpoint-every", "4")), dir);
        Assert.That(step % 4, Is.Not.EqualTo(0), "the test wants a cancellation between two periodic checkpoints");
        Assert.That(File.Exists(b), Is.False, "no model is written by an interrupted run");
        var written = Enumerable.Range(1, step / 4).Select(i => $"checkpoint-{4 * i}").Append($"checkpoint-{step}")
            .ToArray();
        Assert.That(Directory.GetDirectories(dir).Select(Path.GetFileName), Is.EquivalentTo(written));

        byte[] expected = File.ReadAllBytes(a);
        foreach (string checkpoint in written[^2..])
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
        Assert.That(Lora("train", "--digits", "0-7", "--epochs", "1", "--data", _data, "--threads", "1", "--out",
            model).Code, Is.EqualTo(0));
        string[] Args(string output, params string[] more) =>
            ["finetune", "--model", model, "--digits", "8,9", "--epochs", "2", "--batch-size", "8", "--data", _data,
                "--threads", "1", "--out", output, .. more];

        string a = Files.PathOf("adapter-a"), b = Files.PathOf("adapter-b"), dir = Files.PathOf("ck");
        Assert.That(Lora(Args(a)).Code, Is.EqualTo(0));
        int step = AssertInterrupted(Interrupted(Args(b, "--checkpoint-dir", dir)), dir);
        var resumed = Lora(Args(b, "--resume", Path.Combine(dir, $"checkpoint-{step}")));
        Assert.That(resumed.Code, Is.EqualTo(0), resumed.Err);
        foreach (string file in new[] { "adapter_model.safetensors", "adapter_config.json" })
            Assert.That(File.ReadAllBytes(Path.Combine(b, file)),
                Is.EqualTo(File.ReadAllBytes(Path.Combine(a, file))), file);
    }

    [Test]
    public void CheckpointErrorsAreOneLineWithExitTwo()
    {
        string b = Files.PathOf("b.safetensors");
        Assert.That(Interrupted(TrainArgs(b, "--checkpoint-every", "2")).Code,
            Is.EqualTo(CheckpointOptions.InterruptedExitCode));
        string checkpoint = Files.PathOf("b.checkpoints/checkpoint-2");

        var cases = new[]
        {
            (Run: Lora(TrainArgs(b, "--resume", Files.PathOf("nowhere"))), Says: "nowhere"),
            (Run: Lora("train", "--digits", "0-7", "--data", _data, "--checkpoint-every", "2"),
                Says: "--checkpoint-dir"),
            (Run: Lora(TrainArgs(b, "--checkpoint-every", "-1")), Says: "--checkpoint-every"),
            (Run: Lora(TrainArgs(b, "--resume", checkpoint).Select(a => a == "16" ? "8" : a).ToArray()),
                Says: "per_device_train_batch_size 16"),
        };
        foreach (var (run, says) in cases)
        {
            Assert.That(run.Code, Is.EqualTo(2), run.Err);
            Assert.That(run.Err.TrimEnd().Split('\n'), Has.Length.EqualTo(1), run.Err);
            Assert.That(run.Err, Does.Contain(says));
        }

        // Without --out or --checkpoint-dir an interruption still exits 130, saying nothing was kept.
        var bare = LoraCli.Run(["train", "--digits", "0-7", "--epochs", "1", "--data", _data], cancelOn: "");
        Assert.That(bare.Code, Is.EqualTo(CheckpointOptions.InterruptedExitCode), bare.Err);
        Assert.That(bare.Err, Does.Contain("no checkpoint saved"));
    }
}
