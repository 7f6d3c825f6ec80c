using LoRA.Managed.Models;
using LoRA.Managed.Data;
using LoRA.Managed.Autograd;
using LoRA.Managed.IO;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;
using LoRA.Managed.Text;
using LoRA.Managed.Training;

namespace LoRA.Managed.Tests.Training;

/// <summary>
/// Interrupt a run mid-epoch, resume it from its last checkpoint, and get the uninterrupted run's parameters and
/// per-step losses bit for bit; a diverging run keeps its last good checkpoint.
/// </summary>
public class ResumeTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("resume-tests-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    // Three separable classes of 12-pixel images: 160 samples, so 10 batches of 16 per epoch.
    private static MnistDataset Data(ulong seed)
    {
        var gen = new TorchGenerator(seed);
        var pixels = new byte[160 * 12];
        var labels = new byte[160];
        for (int i = 0; i < labels.Length; i++)
        {
            int c = gen.NextInt(3);
            labels[i] = (byte)c;
            for (int p = 0; p < 12; p++)
                pixels[i * 12 + p] = (byte)(p / 4 == c ? 150 + gen.NextInt(106) : gen.NextInt(120));
        }
        return new MnistDataset(pixels, labels, 12, PixelScale.MinusOneToOne);
    }

    private sealed record Setup(Module Model, ClassificationTask Task, Optimizer? Optimizer);

    // Everything is rebuilt from the seed, as a process restarted after a crash would.
    private static Setup Build(string kind)
    {
        var gen = new TorchGenerator(7);
        Module model = new Mlp(gen, 12, 10, 3);
        // "peft-dropout": LoRA dropout draws from the same generator as the shuffle, between the shuffles;
        // "peft-dropout-own": from a generator of its own, which the checkpoint must keep too.
        if (kind.StartsWith("peft", StringComparison.Ordinal))
            model = LoraModel.GetPeftModel(model,
                new LoraConfig { Rank = 2, Alpha = 4, TargetModules = ["layers.1", "layers.3"],
                    Dropout = kind.Contains("dropout") ? 0.2f : 0f },
                kind == "peft-dropout-own" ? new TorchGenerator(99) : gen);
        Optimizer? optimizer = kind == "sgd"
            ? new Sgd(model.TrainableParameters(), 0.05, momentum: 0.9, weightDecay: 1e-3) : null;
        return new Setup(model, new ClassificationTask(Data(3), generator: gen), optimizer);
    }

    private TrainingArguments Args(string kind, string output) => new()
    {
        PerDeviceTrainBatchSize = 16, GradientAccumulationSteps = 3, NumTrainEpochs = 3, // 4 steps per epoch, 12 in all
        LearningRate = 2e-2, WarmupSteps = 2, LrSchedulerType = LrSchedulerType.Cosine, WeightDecay = 0.05,
        Optimizer = kind.StartsWith("peft", StringComparison.Ordinal) ? OptimizerType.Adam : OptimizerType.AdamW,
        SaveStrategy = IntervalStrategy.Steps, SaveSteps = 2, OutputDir = Path.Combine(_dir, output), LoggingSteps = 3,
    };

    private static void AssertBitwiseEqual(Module expected, Module actual, IReadOnlyList<float> expectedLosses,
        IReadOnlyList<float> actualLosses)
    {
        Assert.That(actualLosses.Select(BitConverter.SingleToInt32Bits),
            Is.EqualTo(expectedLosses.Select(BitConverter.SingleToInt32Bits)), "per-step losses");
        var a = expected.NamedParameters().ToList();
        var c = actual.NamedParameters().ToDictionary(p => p.Key, p => p.Value);
        Assert.That(c.Keys, Is.EquivalentTo(a.Select(p => p.Key)));
        foreach (var (name, p) in a)
            Assert.That(c[name].Array.Select(BitConverter.SingleToInt32Bits),
                Is.EqualTo(p.Array.Select(BitConverter.SingleToInt32Bits)), name);
    }

    [TestCase("adamw", false)]
    [TestCase("sgd", true)]
    [TestCase("peft", false)]
    [TestCase("peft", true)]
    [TestCase("peft-dropout", false)]
    [TestCase("peft-dropout-own", false)]
    [TestCase("peft-dropout-own", true)]
    public void ResumedRunEqualsUninterruptedRunBitwise(string kind, bool saveOnCancel)
    {
        Setup a = Build(kind);
        TrainerResult full = new Trainer(a.Model, Args(kind, "a"), a.Optimizer).Train(a.Task);
        Assert.That(full.GlobalStep, Is.EqualTo(12));

        // Run B is cancelled after step 7 (epoch 2, step 3 of 4): its last periodic checkpoint is step 6, mid-epoch.
        Setup b = Build(kind);
        using var cts = new CancellationTokenSource();
        var bArgs = Args(kind, "b") with { SaveOnCancel = saveOnCancel };
        var stopper = new Stopper(p => { if (p.GlobalStep == 7) cts.Cancel(); });
        var canceled = Assert.Throws<TrainingCanceledException>(() => new Trainer(b.Model, bArgs, b.Optimizer)
            .Train(b.Task, stopper, cts.Token))!;
        int last = saveOnCancel ? 7 : 6;
        string checkpoint = Path.Combine(bArgs.OutputDir!, TrainerCheckpoint.DirectoryName(last));
        Assert.That(canceled.GlobalStep, Is.EqualTo(7));
        Assert.That(canceled.CheckpointPath, Is.EqualTo(saveOnCancel ? Path.GetFullPath(checkpoint) : null));
        Assert.That(Directory.GetDirectories(bArgs.OutputDir!).Select(Path.GetFileName)
            .Max(n => int.Parse(n!["checkpoint-".Length..])), Is.EqualTo(last));
        Assert.That(File.Exists(Path.Combine(checkpoint, OptimizerCheckpoint.FileName)));
        Assert.That(File.Exists(Path.Combine(checkpoint, TrainingPosition.RngFileName)));

        Setup c = Build(kind);
        var trainer = new Trainer(c.Model, Args(kind, "b") with { ResumeFromCheckpoint = checkpoint }, c.Optimizer);
        TrainerResult resumed = trainer.Train(c.Task);
        Assert.That(resumed.GlobalStep, Is.EqualTo(12));
        AssertBitwiseEqual(a.Model, c.Model, full.StepLosses, resumed.StepLosses);
        Assert.That(trainer.StepLosses, Is.EqualTo(full.StepLosses));
        Assert.That(resumed.LearningRates, Is.EqualTo(full.LearningRates));
        Assert.That(resumed.LogHistory, Is.EqualTo(full.LogHistory));
    }

    [Test]
    public void ResumedLanguageModelFineTuneEqualsUninterruptedRunBitwise()
    {
        (Module Model, LanguageModelTask Task) BuildLm()
        {
            var gen = new TorchGenerator(9);
            var gpt = new GptModel(new GptConfig { VocabSize = 7, BlockSize = 4, Layers = 1, Heads = 2,
                Embed = 8 }, gen);
            var peft = LoraModel.GetPeftModel(gpt,
                new LoraConfig { Rank = 2, Alpha = 4, TargetModules = ["q_proj", "v_proj"] }, gen);
            int[] tokens = Enumerable.Range(0, 90).Select(i => (i * i + 3 * i) % 7).ToArray();
            return (peft, new LanguageModelTask(SequencePacker.Pack(tokens, 4), generator: gen));
        }
        TrainingArguments LmArgs(string output) => new()
        {
            PerDeviceTrainBatchSize = 4, NumTrainEpochs = 2, LearningRate = 1e-2,
            LrSchedulerType = LrSchedulerType.Linear,
            SaveStrategy = IntervalStrategy.Steps, SaveSteps = 1, OutputDir = Path.Combine(_dir, output),
        };
        var a = BuildLm();
        TrainerResult full = new Trainer(a.Model, LmArgs("a")).Train(a.Task);
        Assert.That(full.GlobalStep, Is.GreaterThan(6));
        // Interrupted in the second epoch, whose order comes from the generator's state after the first epoch.
        int perEpoch = a.Task.BatchesPerEpoch(4);
        Assert.That(perEpoch, Is.GreaterThanOrEqualTo(3));
        var b = BuildLm();
        var stopper = new Stopper(p =>
        {
            if (p.GlobalStep == perEpoch + 2) throw new InvalidOperationException("stop");
        });
        Assert.Throws<InvalidOperationException>(() => new Trainer(b.Model, LmArgs("b")).Train(b.Task, stopper));
        var c = BuildLm();
        TrainerResult resumed = new Trainer(c.Model, LmArgs("b"))
            .Train(c.Task, resumeFrom: Path.Combine(_dir, "b", $"checkpoint-{perEpoch + 1}"));
        AssertBitwiseEqual(a.Model, c.Model, full.StepLosses, resumed.StepLosses);
    }

    [Test]
    public void ResumingFromAnEpochBoundaryAlsoMatches()
    {
        Setup a = Build("adamw");
        TrainerResult full = new Trainer(a.Model, Args("adamw", "a"), a.Optimizer).Train(a.Task);
        Setup b = Build("adamw");
        var stopper = new Stopper(p => { if (p.GlobalStep == 9) throw new InvalidOperationException("stop"); });
        Assert.Throws<InvalidOperationException>(() => new Trainer(b.Model, Args("adamw", "b")).Train(b.Task, stopper));
        Setup c = Build("adamw");
        TrainerResult resumed = new Trainer(c.Model, Args("adamw", "b"))
            .Train(c.Task, resumeFrom: Path.Combine(_dir, "b", "checkpoint-8"));
        AssertBitwiseEqual(a.Model, c.Model, full.StepLosses, resumed.StepLosses);
    }

    /// <summary>Classification whose loss turns NaN at one micro-batch.</summary>
    private sealed class PoisonedTask(ClassificationTask inner, int poisonedBatch) : ITrainingTask<Batch>
    {
        private int _calls;
        public int BatchesPerEpoch(int batchSize) => inner.BatchesPerEpoch(batchSize);
        public IEnumerable<Batch> Batches(int batchSize) => inner.Batches(batchSize);
        public int SampleCount(Batch batch) => batch.Size;
        public Tensor ComputeLoss(Module model, Batch batch)
        {
            Tensor loss = inner.ComputeLoss(model, batch);
            return ++_calls == poisonedBatch ? Functional.Scale(loss, float.NaN) : loss;
        }
        public IReadOnlyDictionary<string, double> Evaluate(Module model, int batchSize) =>
            inner.Evaluate(model, batchSize);
    }

    [Test]
    public void NanLossStopsWithoutCheckpointingAndKeepsTheLastGoodOne()
    {
        Setup s = Build("adamw");
        // 10 steps per epoch
        var args = Args("adamw", "nan") with { GradientAccumulationSteps = 1, SaveOnCancel = true };
        var trainer = new Trainer(s.Model, args);
        var e = Assert.Throws<ArithmeticException>(() => trainer.Train(new PoisonedTask(s.Task, poisonedBatch: 5)));
        Assert.That(e!.Message, Does.Contain("global step 5").And.Contain("checkpoint-4"));
        Assert.That(Directory.GetDirectories(args.OutputDir!).Select(Path.GetFileName),
            Is.EquivalentTo(new[] { "checkpoint-2", "checkpoint-4" }));
        Assert.That(trainer.StepLosses, Has.Count.EqualTo(4));

        // The kept checkpoint is whole: a fresh run resumes from it.
        Setup r = Build("adamw");
        TrainerResult resumed = new Trainer(r.Model, args)
            .Train(r.Task, resumeFrom: Path.Combine(args.OutputDir!, "checkpoint-4"));
        Assert.That(resumed.GlobalStep, Is.EqualTo(30));
        Assert.That(resumed.StepLosses.Take(4), Is.EqualTo(trainer.StepLosses));
    }

    [Test]
    public void ResumingAnotherRunOrAWeightsOnlyFolderIsRefusedBeforeAnythingChanges()
    {
        Setup s = Build("adamw");
        var stopper = new Stopper(p => { if (p.GlobalStep == 3) throw new InvalidOperationException("stop"); });
        Assert.Throws<InvalidOperationException>(() => new Trainer(s.Model, Args("adamw", "x")).Train(s.Task, stopper));
        string checkpoint = Path.Combine(_dir, "x", "checkpoint-2");

        Setup other = Build("adamw");
        float[] before = other.Model.Parameters().First().Array.ToArray();
        var e = Assert.Throws<ArgumentException>(() =>
            new Trainer(other.Model, Args("adamw", "x") with { PerDeviceTrainBatchSize = 8 })
                .Train(other.Task, resumeFrom: checkpoint));
        Assert.That(e!.Message, Does.Contain("per_device_train_batch_size 16").And.Contain("checkpoint-2"));
        Assert.That(other.Model.Parameters().First().Array, Is.EqualTo(before));

        other = Build("adamw"); // the task keeps the loader of the batch size it first served
        string weightsOnly = Path.Combine(_dir, "weights-only");
        TrainerCheckpoint.Save(other.Model, weightsOnly);
        Assert.Throws<InvalidDataFormatException>(() => new Trainer(other.Model, Args("adamw", "x"))
            .Train(other.Task, resumeFrom: weightsOnly));
        Assert.Throws<DirectoryNotFoundException>(() => new Trainer(other.Model, Args("adamw", "x"))
            .Train(other.Task, resumeFrom: Path.Combine(_dir, "none")));
    }

    [Test]
    public void DataLoaderSkipGivesTheTailOfTheSameEpoch()
    {
        var data = Data(5);
        var gen = new TorchGenerator(11);
        var loader = new DataLoader(data, 16, shuffle: true, generator: gen);
        GeneratorState start = gen.GetState();
        int[][] whole = loader.Select(b => b.Indices.ToArray()).ToArray();
        GeneratorState after = gen.GetState();
        gen.SetState(start);
        int[][] tail = loader.Batches(7).Select(b => b.Indices.ToArray()).ToArray();
        Assert.That(tail, Is.EqualTo(whole[7..]));
        Assert.That(gen.GetState().Mt, Is.EqualTo(after.Mt));
        Assert.That(loader.Batches(loader.BatchCount), Is.Empty);
        Assert.Throws<ArgumentOutOfRangeException>(() => loader.Batches(loader.BatchCount + 1));
    }

    private sealed class Stopper(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
