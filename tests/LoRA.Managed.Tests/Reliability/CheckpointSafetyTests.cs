using LoRA.Managed.Cli;
using LoRA.Managed.Data;
using LoRA.Managed.Models;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using LoRA.Managed.IO;
using LoRA.Managed.Tests.Cli;
using LoRA.Managed.Training;

namespace LoRA.Managed.Tests.Reliability;

/// <summary>
/// Issue 18, checkpoints: folders are marked complete (a hash manifest renamed last), a kill between renames is
/// detected, <c>--resume DIR</c> finds the newest complete checkpoint, <c>--save-total-limit</c> rotates, and a resume
/// whose settings differ from the checkpoint's is refused naming the setting.
/// </summary>
public class CheckpointSafetyTests : MnistCliFixture
{
    private string _data = null!;

    [SetUp]
    public void SetUp()
    {
        _data = Files.PathOf("mnist");
        Files.WriteMnist(_data, side: 28, train: 120, test: 20);
    }

    private string[] TrainArgs(string output, params string[] more) =>
        ["train", "--digits", "0-7", "--epochs", "2", "--batch-size", "16", "--seed", "5", "--data", _data,
            "--threads", "1", "--out", output, .. more];

    /// <summary>
    /// Runs with checkpoints every 4 steps and "Ctrl+C" when the first epoch's line is printed, so the run stops after
    /// step 6 (120 images, 96 of them 0-7, batches of 16) with checkpoint-4 and checkpoint-6; returns the folder.
    /// </summary>
    private string Interrupted(string output)
    {
        var stopped = LoraCli.Run(TrainArgs(output, "--checkpoint-every", "4"), cancelOn: " epoch 1/2: loss");
        Assert.That(stopped.Code, Is.EqualTo(CheckpointOptions.InterruptedExitCode), stopped.Err);
        Assert.That(stopped.Err, Does.Contain("after step 6:"), stopped.Err);
        return Path.ChangeExtension(output, ".checkpoints");
    }

    [Test]
    public void EveryCheckpointIsMarkedCompleteAndAMixedFolderIsRefused()
    {
        string dir = Interrupted(Files.PathOf("b.safetensors"));
        foreach (string name in new[] { "checkpoint-4", "checkpoint-6" })
            Assert.That(CheckpointManifest.Problem(Path.Combine(dir, name)), Is.Null, name);
        // A kill between two renames of a re-save: the new optimizer file beside the old rest.
        string seven = Path.Combine(dir, "checkpoint-6");
        File.Copy(Path.Combine(dir, "checkpoint-4", OptimizerCheckpoint.FileName), Path.Combine(seven,
            OptimizerCheckpoint.FileName), overwrite: true);
        Assert.That(CheckpointManifest.Problem(seven), Does.Contain(OptimizerCheckpoint.FileName).And.Contain("mixes " +
            "two saves"));
        var resumed = Lora(TrainArgs(Files.PathOf("b.safetensors"), "--resume", seven));
        Assert.That(resumed.Code, Is.EqualTo(Program.ErrorExitCode));
        Assert.That(resumed.Err, Does.Contain("not a complete checkpoint").And.Contain(OptimizerCheckpoint.FileName));
    }

    [Test]
    public void ResumeGivenTheCheckpointDirectoryTakesTheNewestCompleteOneAndMatchesAnUninterruptedRun()
    {
        string a = Files.PathOf("a.safetensors"), b = Files.PathOf("b.safetensors");
        Assert.That(Lora(TrainArgs(a)).Code, Is.EqualTo(0));
        string dir = Interrupted(b);
        // What kill -9 during the save of step 7 leaves: a folder with some files and no completion mark.
        string torn = Path.Combine(dir, "checkpoint-7");
        Directory.CreateDirectory(torn);
        File.Copy(Path.Combine(dir, "checkpoint-6", TrainerCheckpoint.StateFileName), Path.Combine(torn,
            TrainerCheckpoint.StateFileName));
        Assert.That(CheckpointManifest.FindNewestComplete(dir), Is.EqualTo(Path.Combine(dir, "checkpoint-6")));

        var resumed = Lora(TrainArgs(b, "--resume", dir));
        Assert.That(resumed.Code, Is.EqualTo(0), resumed.Err);
        Assert.That(resumed.Out, Does.Contain($"resuming from {Path.Combine(dir, "checkpoint-6")}"));
        Assert.That(File.ReadAllBytes(b), Is.EqualTo(File.ReadAllBytes(a)));
    }

    [Test]
    public void SaveTotalLimitKeepsOnlyTheNewestCheckpoints()
    {
        string output = Files.PathOf("m.safetensors");
        var run = Lora(TrainArgs(output, "--checkpoint-every", "2", "--save-total-limit", "2"));
        Assert.That(run.Code, Is.EqualTo(0), run.Err);
        // 120 samples of 0-7 are ~96, so 6 batches of 16 per epoch, 12 steps: checkpoints 2..12, the last two kept.
        string dir = Path.ChangeExtension(output, ".checkpoints");
        Assert.That(Directory.GetDirectories(dir).Select(Path.GetFileName), Is.EquivalentTo(new[] { "checkpoint-10",
            "checkpoint-12" }));
    }

    [TestCase("--lr", "0.002", "learning_rate 0.001 but this run has 0.002")]
    [TestCase("--seed", "6", "seed 5 but this run has 6")]
    [TestCase("--normalize", null, "normalize false but this run has true")]
    public void AResumeWithOtherSettingsIsRefusedNamingTheSetting(string option, string? value, string expected)
    {
        string b = Files.PathOf("b.safetensors");
        string dir = Interrupted(b);
        string[] args = TrainArgs(b, "--resume", Path.Combine(dir, "checkpoint-6"));
        int given = Array.IndexOf(args, option);
        if (given >= 0) args[given + 1] = value!;   // --seed is already there: change it
        else args = value is null ? [.. args, option] : [.. args, option, value];
        var resumed = Lora(args);
        Assert.That(resumed.Code, Is.EqualTo(Program.ErrorExitCode), resumed.Out);
        Assert.That(resumed.Err, Does.Contain(expected));
        Assert.That(File.Exists(b), Is.False);
    }

    [Test]
    public void AResumeWithAnotherOptimizerIsRefusedNamingBoth()
    {
        (Module Model, ClassificationTask Task) Build()
        {
            var gen = new TorchGenerator(1);
            var labels = Enumerable.Range(0, 48).Select(i => (byte)(i % 3)).ToArray();
            var pixels = Enumerable.Range(0, 48 * 4).Select(i => (byte)(i * 7 % 256)).ToArray();
            return (new Mlp(gen, 4, 6, 3), new ClassificationTask(new DataLoader(new MnistDataset(pixels, labels, 4),
                8, shuffle: true, generator: gen)));
        }
        string dir = Files.PathOf("opt");
        var args = new TrainingArguments
        {
            PerDeviceTrainBatchSize = 8, NumTrainEpochs = 2, OutputDir = dir, SaveStrategy = IntervalStrategy.Steps,
                SaveSteps = 3,
            LearningRate = 1e-2, Optimizer = OptimizerType.Adam,
        };
        var (model, task) = Build();
        new Trainer(model, args).Train(task);
        var (again, task2) = Build();
        var ex = Assert.Throws<ArgumentException>(() => new Trainer(again,
            args with { Optimizer = OptimizerType.AdamW }).Train(task2, resumeFrom: Path.Combine(dir,
            "checkpoint-3")))!;
        Assert.That(ex.Message, Does.Contain("optimizer Adam but this run has AdamW"));
    }
}
