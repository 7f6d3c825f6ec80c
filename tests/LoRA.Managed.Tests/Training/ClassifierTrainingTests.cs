using LoRA.Managed.Models;
using LoRA.Managed.Data;
using LoRA.Managed.Nn;
using LoRA.Managed.Recipes;
using LoRA.Managed.Tensors;
using LoRA.Managed.Training;

namespace LoRA.Managed.Tests.Training;

/// <summary>The classifier recipe (<see cref="ClassifierTraining"/>) and <see cref="ClassifierEvaluation"/> on a small
/// separable problem.</summary>
public class ClassifierTrainingTests
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

    private static (Mlp Model, TrainerResult Result) Train(ulong seed, int epochs = 3,
        List<TrainingProgress>? reports = null)
    {
        var gen = new TorchGenerator(seed);
        var model = new Mlp(gen, 12, 16, 3);
        TrainerResult result = ClassifierTraining.Fit(model, Separable(300, seed + 1),
            new ClassifierTrainingOptions { Epochs = epochs, LearningRate = 1e-2, BatchSize = 32 }, gen,
            reports is null ? null : new Recorder(reports));
        return (model, result);
    }

    private sealed class Recorder(List<TrainingProgress> reports) : RecipeObserver
    {
        public override void RunPhase(TrainingPhase phase, Action<IProgress<TrainingProgress>?> train) =>
            train(new SynchronousProgress(reports.Add));
    }

    private sealed class SynchronousProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    [Test]
    public void LearnsASeparableProblem()
    {
        var (model, trainer) = Train(seed: 5);
        EvaluationResult result = ClassifierEvaluation.Evaluate(model, Separable(600, 99));

        Assert.That(result.Accuracy, Is.GreaterThanOrEqualTo(0.99));
        Assert.That(result.Count, Is.EqualTo(600));
        Assert.That(trainer.StepLosses, Has.Count.EqualTo(3 * 10)); // ⌈300/32⌉ = 10 steps per epoch
        Assert.That(trainer.StepLosses[^1], Is.LessThan(trainer.StepLosses[0] / 4));
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
        Assert.That(tb.StepLosses, Is.EqualTo(ta.StepLosses));
        Assert.That(c.Parameters().First().Array, Is.Not.EqualTo(a.Parameters().First().Array));
    }

    [Test]
    public void ConfusionMatrixCountsTrueAgainstPredicted()
    {
        var (model, _) = Train(seed: 5);
        MnistDataset data = Separable(90, 7);
        EvaluationResult result = ClassifierEvaluation.Evaluate(model, data, batchSize: 16);
        int[] perClass = data.LabelCounts(3);
        for (int t = 0; t < 3; t++)
            Assert.That(Enumerable.Range(0, 3).Sum(p => result.Confusion[t, p]), Is.EqualTo(perClass[t]), $"row {t}");
        Assert.That(result.Correct, Is.EqualTo(Enumerable.Range(0, 3).Sum(t => result.Confusion[t, t])));
        Assert.That(result.ConfusionRows()[1][1], Is.EqualTo(result.Confusion[1, 1]));
    }

    [Test]
    public void ProgressReportsEveryStep()
    {
        var reports = new List<TrainingProgress>();
        Train(seed: 3, epochs: 2, reports);
        Assert.That(reports, Has.Count.EqualTo(20));
        Assert.That(reports.Select(r => r.GlobalStep), Is.EqualTo(Enumerable.Range(1, 20)));
        Assert.That(reports.Select(r => r.LearningRate), Is.All.EqualTo(1e-2), "the blog recipe's rate is constant");
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
        var e = Assert.Throws<ArithmeticException>(() => ClassifierTraining.Fit(model, Separable(64, 1),
            new ClassifierTrainingOptions { Epochs = 1, BatchSize = 16 }, gen))!;
        Assert.That(e.Message, Does.Contain("NaN").And.Contain("epoch 1, step 1 of 4"));
    }
}
