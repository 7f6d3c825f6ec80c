using LoRA.Managed.Models;
using LoRA.Managed.Autograd;
using LoRA.Managed.Data;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;
using LoRA.Managed.Training;

namespace LoRA.Managed.Tests.Training;

public class TrainerTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("trainer-tests-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    // Three linearly separable classes of 12-pixel images (as in ClassifierTrainerTests).
    private static MnistDataset Separable(int count, ulong seed)
    {
        var gen = new TorchGenerator(seed);
        var pixels = new byte[count * 12];
        var labels = new byte[count];
        for (int i = 0; i < count; i++)
        {
            int c = gen.NextInt(3);
            labels[i] = (byte)c;
            for (int p = 0; p < 12; p++)
                pixels[i * 12 + p] = (byte)(p / 4 == c ? 200 + gen.NextInt(56) : gen.NextInt(56));
        }
        return new MnistDataset(pixels, labels, 12, PixelScale.MinusOneToOne);
    }

    private static Dictionary<string, float[]> Snapshot(Module model) =>
        model.NamedParameters().ToDictionary(p => p.Key, p => p.Value.Clone().Array);

    /// <summary>Classification whose eval_loss follows a script and which snapshots the model at every
    /// evaluation.</summary>
    private sealed class ScriptedEval(ITrainingTask<Batch> inner, params double[] losses) : ITrainingTask<Batch>
    {
        public List<Dictionary<string, float[]>> Snapshots { get; } = [];
        public int BatchesPerEpoch(int batchSize) => inner.BatchesPerEpoch(batchSize);
        public IEnumerable<Batch> Batches(int batchSize) => inner.Batches(batchSize);
        public int SampleCount(Batch batch) => batch.Size;
        public Tensor ComputeLoss(Module model, Batch batch) => inner.ComputeLoss(model, batch);
        public IReadOnlyDictionary<string, double> Evaluate(Module model, int batchSize)
        {
            Snapshots.Add(Snapshot(model));
            return new Dictionary<string, double> { ["eval_loss"] = losses[Snapshots.Count - 1],
                ["eval_accuracy"] = 1 - losses[Snapshots.Count - 1] };
        }
    }

    [Test]
    public void WarmupThenCosineIsAppliedAtEveryStep()
    {
        var gen = new TorchGenerator(1);
        var model = new Mlp(gen, 12, 8, 3);
        var args = new TrainingArguments { PerDeviceTrainBatchSize = 16, NumTrainEpochs = 2, LearningRate = 1e-2,
            WarmupSteps = 4, LrSchedulerType = LrSchedulerType.Cosine };
        // 10 steps per epoch
        var result = new Trainer(model, args).Train(new ClassificationTask(Separable(160, 2), generator: gen));
        var expected = LrSchedules.WarmupCosine(1e-2, 4, 20);
        Assert.That(result.GlobalStep, Is.EqualTo(20));
        Assert.That(result.LearningRates, Is.EqualTo(Enumerable.Range(0, 20).Select(i => expected(i))).AsCollection);
        Assert.That(result.LearningRates[0], Is.EqualTo(0));
        Assert.That(result.LearningRates[4], Is.EqualTo(1e-2));
        Assert.That(result.LearningRates[19], Is.LessThan(1e-4).And.GreaterThan(0));
    }

    [Test]
    public void LinearScheduleWithWarmupRatioAndMaxStepsCap()
    {
        var gen = new TorchGenerator(1);
        var model = new Mlp(gen, 12, 8, 3);
        var args = new TrainingArguments { PerDeviceTrainBatchSize = 16, NumTrainEpochs = 5, MaxSteps = 13,
            LearningRate = 1e-2, WarmupRatio = 0.2 };
        var result = new Trainer(model, args).Train(new ClassificationTask(Separable(160, 2), generator: gen));
        Assert.That(result.GlobalStep, Is.EqualTo(13));
        Assert.That(result.Epochs, Is.EqualTo(2));
        var expected = LrSchedules.WarmupLinear(1e-2, 3, 13); // ceil(13 · 0.2) = 3
        Assert.That(result.LearningRates, Is.EqualTo(Enumerable.Range(0, 13).Select(i => expected(i))).AsCollection);
    }

    [Test]
    public void GradientAccumulationMatchesOneBatchTwiceAsLarge()
    {
        // Not bitwise: the big batch's weight gradient sums 64 rows in one GEMM reduction; accumulation sums two
        // 32-row partial sums, each scaled by ½, into the gradient. Float addition is not associative, so the last
        // bits differ; Adam then turns equal gradients into equal steps, so the weights agree to ~1e-6.
        float[] Run(int batch, int accumulation, out IReadOnlyList<float> losses)
        {
            var model = new Mlp(new TorchGenerator(3), 12, 16, 3);
            var args = new TrainingArguments { PerDeviceTrainBatchSize = batch,
                GradientAccumulationSteps = accumulation, NumTrainEpochs = 4, LearningRate = 1e-2,
                LrSchedulerType = LrSchedulerType.Cosine, WarmupSteps = 1, WeightDecay = 0.1 };
            // in order: the same samples per step
            var result = new Trainer(model, args).Train(new ClassificationTask(Separable(128, 4)));
            losses = result.StepLosses;
            return model.Parameters().SelectMany(p => p.Array).ToArray();
        }
        float[] big = Run(64, 1, out var bigLosses), accumulated = Run(32, 2, out var accLosses);
        Assert.That(accLosses, Has.Count.EqualTo(8));
        Assert.That(accLosses, Is.EqualTo(bigLosses).Within(1e-5f).AsCollection);
        Assert.That(accumulated, Is.EqualTo(big).Within(2e-5f).AsCollection);
        float[] unaccumulated = Run(32, 1, out _);
        Assert.That(unaccumulated.Zip(big).Max(p => Math.Abs(p.First - p.Second)), Is.GreaterThan(1e-3f),
            "a different recipe differs clearly");
    }

    /// <summary>A loss whose gradient is exactly zero everywhere (logits scaled by 0), so AdamW's step is pure
    /// decay.</summary>
    private sealed class ZeroGradientTask : ITrainingTask<int>
    {
        public int BatchesPerEpoch(int batchSize) => 3;
        public IEnumerable<int> Batches(int batchSize) => Enumerable.Range(0, 3);
        public int SampleCount(int batch) => 1;
        public Tensor ComputeLoss(Module model, int batch) =>
            Functional.CrossEntropy(Functional.Scale(((GptModel)model).Forward([1, 2, 3, 4], 1, 4), 0f), [2, 3, 4, 5]);
        public IReadOnlyDictionary<string, double> Evaluate(Module model, int batchSize) =>
            new Dictionary<string, double>();
    }

    [Test]
    public void WeightDecaySkipsOneDimensionalParameters()
    {
        var model = new GptModel(new GptConfig { VocabSize = 7, BlockSize = 4, Layers = 1, Heads = 2, Embed = 8 },
            new TorchGenerator(5));
        // biases and norms non-zero
        foreach (var (name, p) in model.NamedParameters()) if (p.Rank == 1) p.Data.Fill(0.5f);
        var before = Snapshot(model);
        var args = new TrainingArguments { PerDeviceTrainBatchSize = 1, NumTrainEpochs = 1, LearningRate = 0.1,
            WeightDecay = 0.5, LrSchedulerType = LrSchedulerType.Constant };
        var trainer = new Trainer(model, args);
        Assert.That(Trainer.NoDecayParameters(model.Parameters()).Select(p => p.Rank), Is.All.EqualTo(1));
        trainer.Train(new ZeroGradientTask());
        int decayed = 0, kept = 0;
        foreach (var (name, p) in model.NamedParameters())
        {
            if (p.Rank == 1)
            {
                Assert.That(p.Array, Is.EqualTo(before[name]).AsCollection, $"{name} (1-D) must not decay");
                kept++;
            }
            else
            {
                // Three steps of θ ← θ·(1 − lr·λ) = θ·0.95.
                Assert.That(p.Array,
                    Is.EqualTo(before[name].Select(v => v * 0.95f * 0.95f * 0.95f)).Within(1e-6f).AsCollection, name);
                decayed++;
            }
        }
        Assert.That(kept, Is.GreaterThanOrEqualTo(8)); // q/k/v/o/fc1/fc2 biases, ln_1/ln_2/ln_f weights and biases
        Assert.That(decayed, Is.GreaterThanOrEqualTo(8));
    }

    [Test]
    public void SaveTotalLimitKeepsTheNewestAndTheBest()
    {
        var gen = new TorchGenerator(6);
        var model = new Mlp(gen, 12, 8, 3);
        var args = new TrainingArguments
        {
            OutputDir = _dir, PerDeviceTrainBatchSize = 32, NumTrainEpochs = 5, LearningRate = 1e-2,
            EvalStrategy = IntervalStrategy.Epoch, SaveStrategy = IntervalStrategy.Epoch, SaveTotalLimit = 2,
            LoadBestModelAtEnd = true,
        };
        // 2 steps per epoch
        var task = new ScriptedEval(new ClassificationTask(Separable(64, 7), generator: gen), 0.5, 0.2, 0.4, 0.6, 0.7);
        var result = new Trainer(model, args).Train(task);
        string best = Path.Combine(_dir, "checkpoint-4"), last = Path.Combine(_dir, "checkpoint-10");
        Assert.That(Directory.GetDirectories(_dir).Order(), Is.EqualTo(new[] { last, best }.Order()));
        Assert.That(result.Checkpoints, Is.EqualTo(new[] { best, last }));
        Assert.That(result.BestCheckpoint, Is.EqualTo(best));
        Assert.That(result.BestMetric, Is.EqualTo(0.2));
        Assert.That(File.Exists(Path.Combine(best, TrainerCheckpoint.ModelFileName)));
        Assert.That(File.ReadAllText(Path.Combine(last, TrainerCheckpoint.StateFileName)),
            Does.Contain("checkpoint-4"));

        // Without load_best_model_at_end the limit keeps just the newest two; accuracy (greater is better) picks
        // another best.
        string other = Path.Combine(_dir, "plain");
        var plain = new Trainer(new Mlp(new TorchGenerator(6), 12, 8, 3),
            args with { OutputDir = other, LoadBestModelAtEnd = false, MetricForBestModel = "eval_accuracy" })
            .Train(new ScriptedEval(new ClassificationTask(Separable(64, 7)), 0.5, 0.2, 0.4, 0.6, 0.7));
        Assert.That(Directory.GetDirectories(other).Select(Path.GetFileName).Order(),
            Is.EqualTo(new[] { "checkpoint-10", "checkpoint-8" }));
        Assert.That(plain.BestMetric, Is.EqualTo(0.8).Within(1e-12));
        Assert.That(plain.RestoredBest, Is.False);
    }

    [Test]
    public void LoadBestModelAtEndRestoresTheBestWeights()
    {
        var gen = new TorchGenerator(8);
        var model = new Mlp(gen, 12, 8, 3);
        var args = new TrainingArguments
        {
            OutputDir = _dir, PerDeviceTrainBatchSize = 32, NumTrainEpochs = 4, LearningRate = 1e-2,
            EvalStrategy = IntervalStrategy.Epoch, SaveStrategy = IntervalStrategy.Epoch, SaveTotalLimit = 1,
            LoadBestModelAtEnd = true,
        };
        var task = new ScriptedEval(new ClassificationTask(Separable(64, 9), generator: gen), 0.9, 0.3, 0.5, 0.8);
        var result = new Trainer(model, args).Train(task);
        Assert.That(result.RestoredBest, Is.True);
        Assert.That(result.BestStep, Is.EqualTo(4));
        var now = Snapshot(model);
        foreach (var (name, values) in task.Snapshots[1]) Assert.That(now[name], Is.EqualTo(values).AsCollection, name);
        Assert.That(now["layers.1.weight"], Is.Not.EqualTo(task.Snapshots[3]["layers.1.weight"]));
    }

    [Test]
    public void LoadBestModelAtEndRestoresAPeftAdapter()
    {
        var gen = new TorchGenerator(10);
        var peft = LoraModel.GetPeftModel(new Mlp(gen, 12, 8, 3),
            new LoraConfig { Rank = 2, Alpha = 4, TargetModules = ["layers.1", "layers.3"] }, gen);
        var args = new TrainingArguments
        {
            OutputDir = _dir, PerDeviceTrainBatchSize = 32, NumTrainEpochs = 3, LearningRate = 5e-2, WeightDecay = 0.1,
            EvalStrategy = IntervalStrategy.Epoch, SaveStrategy = IntervalStrategy.Epoch, LoadBestModelAtEnd = true,
            MetricForBestModel = "eval_accuracy",
        };
        // accuracy best at epoch 2
        var task = new ScriptedEval(new ClassificationTask(Separable(64, 11), generator: gen), 0.6, 0.1, 0.4);
        var result = new Trainer(peft, args).Train(task);
        Assert.That(File.Exists(Path.Combine(_dir, "checkpoint-4", AdapterFiles.WeightsFileName)));
        Assert.That(File.Exists(Path.Combine(_dir, "checkpoint-4", "adapter_config.json")));
        Assert.That(result.BestCheckpoint, Is.EqualTo(Path.Combine(_dir, "checkpoint-4")));
        var now = Snapshot(peft);
        foreach (var (name, values) in task.Snapshots[1]) Assert.That(now[name], Is.EqualTo(values).AsCollection, name);
        Assert.That(now["layers.3.lora_B.default.weight"],
            Is.Not.EqualTo(task.Snapshots[2]["layers.3.lora_B.default.weight"]));
    }

    /// <summary>Classification that turns the inputs of micro-batch <c>poison</c> (0-based, counted across epochs) into
    /// NaN.</summary>
    private sealed class PoisonedTask(ITrainingTask<Batch> inner, int poison) : ITrainingTask<Batch>
    {
        private int _calls;
        public int BatchesPerEpoch(int batchSize) => inner.BatchesPerEpoch(batchSize);
        public IEnumerable<Batch> Batches(int batchSize) => inner.Batches(batchSize);
        public int SampleCount(Batch batch) => batch.Size;
        public Tensor ComputeLoss(Module model, Batch batch)
        {
            if (_calls++ == poison) batch.Images.Data[0] = float.NaN;
            return inner.ComputeLoss(model, batch);
        }
        public IReadOnlyDictionary<string, double> Evaluate(Module model, int batchSize) =>
            inner.Evaluate(model, batchSize);
    }

    [Test]
    public void NonFiniteLossStopsWithTheStepNamed()
    {
        var args = new TrainingArguments { PerDeviceTrainBatchSize = 16, NumTrainEpochs = 3, LearningRate = 1e-2 };
        var trainer = new Trainer(new Mlp(new TorchGenerator(0), 12, 4, 3), args);
        var e = Assert.Throws<ArithmeticException>(() =>
            trainer.Train(new PoisonedTask(new ClassificationTask(Separable(64, 1)), 6)))!;
        Assert.That(e.Message, Does.Contain("NaN").And.Contain("epoch 2, step 3 of 4").And.Contain("global step 7"));
        Assert.That(trainer.StepLosses, Has.Count.EqualTo(6));

        var accumulating = new Trainer(new Mlp(new TorchGenerator(0), 12, 4, 3),
            args with { GradientAccumulationSteps = 2 });
        e = Assert.Throws<ArithmeticException>(() =>
            accumulating.Train(new PoisonedTask(new ClassificationTask(Separable(64, 1)), 3)))!;
        Assert.That(e.Message, Does.Contain("epoch 1, step 2 of 2, micro-batch 2 of 2"));
    }

    [TestCase("LearningRate", "learning_rate")]
    [TestCase("PerDeviceTrainBatchSize", "per_device_train_batch_size")]
    [TestCase("GradientAccumulationSteps", "gradient_accumulation_steps")]
    [TestCase("WarmupRatio", "warmup_ratio")]
    [TestCase("OutputDir", "output_dir")]
    [TestCase("SaveStrategy", "save_strategy")]
    public void InvalidArgumentsNameTheField(string field, string hfName)
    {
        var args = field switch
        {
            "LearningRate" => new TrainingArguments { LearningRate = -1e-3 },
            "PerDeviceTrainBatchSize" => new TrainingArguments { PerDeviceTrainBatchSize = 0 },
            "GradientAccumulationSteps" => new TrainingArguments { GradientAccumulationSteps = 0 },
            "WarmupRatio" => new TrainingArguments { WarmupRatio = 1.5 },
            "OutputDir" => new TrainingArguments { SaveStrategy = IntervalStrategy.Epoch },
            _ => new TrainingArguments { OutputDir = "x", LoadBestModelAtEnd = true,
                EvalStrategy = IntervalStrategy.Epoch, SaveStrategy = IntervalStrategy.Steps },
        };
        var e = Assert.Throws<ArgumentException>(args.Validate)!;
        Assert.That(e.Message, Does.Contain($"TrainingArguments.{field} ({hfName})"));
        Assert.Throws<ArgumentException>(() => new Trainer(new Mlp(new TorchGenerator(0), 2, 2, 2), args));
        Assert.DoesNotThrow(new TrainingArguments().Validate);
    }
}
