using LoRA.Managed.Nn;
using LoRA.Managed.Cli;
using LoRA.Managed.Data;
using LoRA.Managed.IO;
using LoRA.Managed.Models;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;
using LoRA.Managed.Tests.Cli;
using LoRA.Managed.Training;

namespace LoRA.Managed.Tests.Reliability;

/// <summary>
/// Issue 18, interrupts: every "saved to X" names a checkpoint that exists; Ctrl+C, SIGTERM and SIGHUP stop training
/// the same way; a signal during the final save lets the save finish, a second abandons it and the previous file stays.
/// </summary>
public class InterruptTests : MnistCliFixture
{
    private string Data(int train = 120)
    {
        string data = Files.PathOf("mnist");
        if (!Directory.Exists(data)) Files.WriteMnist(data, side: 28, train: train, test: 20);
        return data;
    }

    /// <summary>A schedule that cancels the run while step <paramref name="at"/> is being set up (after the
    /// between-steps check).</summary>
    private static LrSchedule CancelWhileSettingUp(double rate, int at, CancellationTokenSource cts) => step =>
    {
        if (step == at) cts.Cancel();
        return rate;
    };

    [Test]
    public void ACancellationArrivingAfterTheBetweenStepsCheckStillEndsWithTheCheckpointItNames()
    {
        var gen = new TorchGenerator(1);
        var model = new Mlp(gen, 4, 6, 3);
        var labels = Enumerable.Range(0, 48).Select(i => (byte)(i % 3)).ToArray();
        var pixels = Enumerable.Range(0, 48 * 4).Select(i => (byte)(i * 7 % 256)).ToArray();
        var task = new ClassificationTask(new DataLoader(new MnistDataset(pixels, labels, 4), 8, shuffle: true,
            generator: gen));
        using var cts = new CancellationTokenSource();
        string dir = Files.PathOf("ckpt");
        var args = new TrainingArguments { PerDeviceTrainBatchSize = 8, NumTrainEpochs = 2, OutputDir = dir,
            SaveOnCancel = true, LearningRate = 1e-2 };
        var trainer = new Trainer(model, args, null, CancelWhileSettingUp(1e-2, 3, cts));
        var e = Assert.Throws<TrainingCanceledException>(() => trainer.Train(task, cancellation: cts.Token))!;
        // Step 4 (schedule index 3) was already under way: it is finished, then saved, then the run stops.
        Assert.That(e.GlobalStep, Is.EqualTo(4));
        Assert.That(e.CheckpointPath, Is.EqualTo(Path.GetFullPath(Path.Combine(dir, "checkpoint-4"))));
        Assert.That(CheckpointManifest.Problem(e.CheckpointPath!), Is.Null);
    }

    [Test]
    public void AnInterruptRightAfterResumingIntoANewCheckpointDirSavesThereBeforeSayingSo()
    {
        string first = Files.PathOf("first"), second = Files.PathOf("second");
        string[] common = ["train", "--digits", "0-7", "--epochs", "2", "--batch-size", "16", "--data", Data(),
            "--threads", "1"];
        // "Ctrl+C" when the first epoch's line is printed: the run stops after that epoch's last step.
        var stopped = LoraCli.Run([.. common, "--checkpoint-dir", first], cancelOn: " epoch 1/2: loss");
        Assert.That(stopped.Code, Is.EqualTo(CheckpointOptions.InterruptedExitCode), stopped.Err);
        string step = System.Text.RegularExpressions.Regex.Match(stopped.Err, @"after step (\d+)").Groups[1].Value;
        // Resumed there with another folder and stopped before its first step: the checkpoint must be written there.
        var again = LoraCli.Run([.. common, "--checkpoint-dir", second, "--resume", Path.Combine(first,
            $"checkpoint-{step}")], cancelOn: "");
        Assert.That(again.Code, Is.EqualTo(CheckpointOptions.InterruptedExitCode), again.Err);
        string claimed = Path.GetFullPath(Path.Combine(second, $"checkpoint-{step}"));
        Assert.That(again.Err, Does.Contain($"checkpoint saved to {claimed}"));
        Assert.That(CheckpointManifest.Problem(claimed), Is.Null, "the checkpoint the message names exists and is " +
            "complete");
    }

    private string[] TrainArgs(string output, int epochs = 1) =>
        ["train", "--digits", "0-7", "--epochs", epochs.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--batch-size", "16",
         "--data", Data(), "--threads", "1", "--out", output];

    [TestCase("INT")]
    [TestCase("TERM")]
    [TestCase("HUP")]
    public void ASignalDuringTheFinalSaveLetsTheSaveFinishThenExits130(string signal)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("sends POSIX signals with kill(1)");
        string output = Files.PathOf("model.safetensors");
        using var lora = new LoraProcess(new Dictionary<string,
            string> { [InterruptSignals.SavePauseVariable] = "1500" }, TrainArgs(output));
        lora.WaitFor("pausing", TimeSpan.FromSeconds(60));
        lora.Signal(signal);
        int code = lora.Exit(TimeSpan.FromSeconds(60));
        Assert.That(code, Is.EqualTo(CheckpointOptions.InterruptedExitCode), lora.Err);
        Assert.That(lora.Err, Does.Contain($"SIG{signal} received while saving").And.Contain("model saved to " +
            $"{output}"));
        Assert.DoesNotThrow(() => ModelFile.Load(Mlp.Blog(new TorchGenerator(0)), output), "the saved model is whole");
    }

    [Test]
    public void ASecondCtrlCAbandonsTheSaveAndThePreviousFileStays()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("sends POSIX signals with kill(1)");
        string output = Files.PathOf("model.safetensors");
        File.WriteAllBytes(output, [1, 2, 3, 4]);
        using var lora = new LoraProcess(new Dictionary<string,
            string> { [InterruptSignals.SavePauseVariable] = "3000" }, TrainArgs(output));
        lora.WaitFor("pausing", TimeSpan.FromSeconds(60));
        lora.Signal("INT");
        lora.WaitFor("received while saving", TimeSpan.FromSeconds(10));
        lora.Signal("INT");
        int code = lora.Exit(TimeSpan.FromSeconds(60));
        Assert.That(code, Is.Not.EqualTo(0), lora.Err);
        Assert.That(File.ReadAllBytes(output), Is.EqualTo(new byte[] { 1, 2, 3, 4 }), "the previous file is untouched");
        Assert.That(lora.Out, Does.Not.Contain("model saved"));
    }

    [TestCase("TERM")]
    [TestCase("HUP")]
    public void SigtermAndSighupDuringTrainingWriteACheckpointAsCtrlCDoes(string signal)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("sends POSIX signals with kill(1)");
        Data(train: 3000);
        string output = Files.PathOf("model.safetensors");
        using var lora = new LoraProcess(null, TrainArgs(output,
            epochs: 500));   // far longer than the wait: the signal ends it
        lora.WaitFor("train: digits", TimeSpan.FromSeconds(60));
        Thread.Sleep(500);
        lora.Signal(signal);
        int code = lora.Exit(TimeSpan.FromSeconds(60));
        Assert.That(code, Is.EqualTo(CheckpointOptions.InterruptedExitCode), lora.Out + lora.Err);
        string? saved = lora.Err.Split("checkpoint saved to ").ElementAtOrDefault(1)?.Split(';')[0];
        Assert.That(saved, Is.Not.Null, lora.Err);
        Assert.That(CheckpointManifest.Problem(saved!), Is.Null, "the checkpoint named exists and is complete");
        Assert.That(File.Exists(output), Is.False);
    }
}
