using LoRA.Managed.Models;
using LoRA.Managed.Data;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;
using LoRA.Managed.Training;

namespace LoRA.Managed.Tests.Training;

public class ClassifierTrainerTests
{
    // Three classes of 12-pixel "images": class c is bright (200..255) on pixels 4c..4c+3 and dark (0..55)
    // elsewhere, so the classes are linearly separable with a wide margin.
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

    private static (Mlp Model, ClassifierTrainer Trainer) Train(ulong seed, int epochs = 3, LrSchedule? schedule = null, List<TrainingProgress>? reports = null)
    {
        var gen = new TorchGenerator(seed);
        var model = new Mlp(gen, 12, 16, 3);
        var loader = new DataLoader(Separable(300, seed + 1), 32, shuffle: true, generator: gen);
        var trainer = new ClassifierTrainer();
        trainer.Fit(model, new Adam(model.Parameters(), 1e-2), loader, epochs, schedule,
            reports is null ? null : new SynchronousProgress(reports.Add));
        return (model, trainer);
    }

    private sealed class SynchronousProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    [Test]
    public void LearnsASeparableProblem()
    {
        var (model, trainer) = Train(seed: 5);
        EvaluationResult result = ClassifierTrainer.Evaluate(model, Separable(600, 99));

        Assert.That(result.Accuracy, Is.GreaterThanOrEqualTo(0.99));
        Assert.That(result.Count, Is.EqualTo(600));
        Assert.That(trainer.Losses, Has.Count.EqualTo(3 * 10)); // ⌈300/32⌉ = 10 steps per epoch
        Assert.That(trainer.Losses[^1], Is.LessThan(trainer.Losses[0] / 4));
        Assert.That(model.Training, Is.True, "Evaluate restores the training mode");
    }

    [Test]
    public void SameSeedGivesBitwiseIdenticalWeights()
    {
        var (a, ta) = Train(seed: 11);
        var (b, tb) = Train(seed: 11);
        var (c, _) = Train(seed: 12);
        foreach (var ((name, pa), (_, pb)) in a.NamedParameters().Zip(b.NamedParameters()))
            Assert.That(pb.Array, Is.EqualTo(pa.Array).AsCollection, name); // exact float equality
        Assert.That(tb.Losses, Is.EqualTo(ta.Losses));
        Assert.That(c.Parameters().First().Array, Is.Not.EqualTo(a.Parameters().First().Array));
    }

    [Test]
    public void ConfusionMatrixCountsTrueAgainstPredicted()
    {
        var (model, _) = Train(seed: 5);
        MnistDataset data = Separable(90, 7);
        EvaluationResult result = ClassifierTrainer.Evaluate(model, data, batchSize: 16);
        int[] perClass = data.LabelCounts(3);
        for (int t = 0; t < 3; t++)
            Assert.That(Enumerable.Range(0, 3).Sum(p => result.Confusion[t, p]), Is.EqualTo(perClass[t]), $"row {t}");
        Assert.That(result.Correct, Is.EqualTo(Enumerable.Range(0, 3).Sum(t => result.Confusion[t, t])));
        Assert.That(result.ConfusionRows()[1][1], Is.EqualTo(result.Confusion[1, 1]));
    }

    [Test]
    public void ProgressReportsEveryStepWithTheScheduledRate()
    {
        var reports = new List<TrainingProgress>();
        var schedule = LrSchedules.WarmupCosine(1e-2, 5, 20);
        Train(seed: 3, epochs: 2, schedule, reports);
        Assert.That(reports, Has.Count.EqualTo(20));
        Assert.That(reports.Select(r => r.GlobalStep), Is.EqualTo(Enumerable.Range(1, 20)));
        Assert.That(reports.Select(r => r.LearningRate), Is.EqualTo(Enumerable.Range(0, 20).Select(i => schedule(i))));
        Assert.That(reports.Count(r => r.EndOfEpoch), Is.EqualTo(2));
        Assert.That(reports[9].Epoch, Is.EqualTo(1));
        Assert.That(reports[10].Epoch, Is.EqualTo(2));
    }

    [Test]
    public void NonFiniteLossNamesTheStep()
    {
        var gen = new TorchGenerator(0);
        var model = new Mlp(gen, 12, 4, 3);
        model.Parameters().First()[0] = float.NaN;
        var loader = new DataLoader(Separable(64, 1), 16);
        var e = Assert.Throws<ArithmeticException>(() => new ClassifierTrainer().Fit(model, new Adam(model.Parameters()), loader, 1))!;
        Assert.That(e.Message, Does.Contain("NaN").And.Contain("epoch 1, step 1 of 4"));
    }
}
