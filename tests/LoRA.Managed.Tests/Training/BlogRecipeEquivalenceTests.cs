using LoRA.Managed.Models;
using LoRA.Managed.Autograd;
using LoRA.Managed.Data;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Recipes;
using LoRA.Managed.Tensors;
using LoRA.Managed.Training;

namespace LoRA.Managed.Tests.Training;

/// <summary>
/// The blog's recipe (Adam 1e-3, no decay, constant rate, batch 64, shuffled, one generator for init, order and
/// adapter) through the library's recipe (<see cref="ClassifierTraining"/>, which runs the one <see cref="Trainer"/>
/// loop) must train bit for bit as the plain loop it replaced, kept here verbatim as <see cref="ReferenceFit"/>.
/// </summary>
public class BlogRecipeEquivalenceTests
{
    // The loop the blog recipe ran before Trainer existed, minus progress reporting.
    private static List<float> ReferenceFit(Module model, Optimizer optimizer, DataLoader loader, int epochs)
    {
        var losses = new List<float>();
        model.Train();
        var arena = new TensorArena();
        for (int epoch = 1; epoch <= epochs; epoch++)
        {
            foreach (Batch batch in loader)
            {
                using ArenaScope step = arena.Activate();
                optimizer.ZeroGrad();
                Tensor logits = model.Forward(batch.Images);
                Tensor loss = Functional.CrossEntropy(logits, batch.Labels);
                float value = loss.Item();
                if (!float.IsFinite(value)) throw new ArithmeticException("diverged");
                loss.Backward();
                optimizer.Step();
                losses.Add(value);
            }
        }
        return losses;
    }

    // 150 raw 0..255 "images" of 784 pixels in 10 classes: batches of 64, 64 and a partial 22.
    private static MnistDataset Digits(ulong seed)
    {
        var gen = new TorchGenerator(seed);
        var pixels = new byte[150 * 784];
        var labels = new byte[150];
        for (int i = 0; i < 150; i++)
        {
            labels[i] = (byte)gen.NextInt(10);
            for (int p = 0; p < 784; p++)
                pixels[i * 784 + p] = (byte)(p % 10 == labels[i] ? 128 + gen.NextInt(128) : gen.NextInt(64));
        }
        return new MnistDataset(pixels, labels, 784);
    }

    private static readonly LoraConfig Adapter = new() { Rank = 4, Alpha = 1, TargetModules = ["layers.5"],
        Init = LoraInit.Svd, Scaling = LoraScaling.Alpha };

    private static (PeftModel Peft, List<float> Losses) Reference()
    {
        var gen = new TorchGenerator(7);
        MnistDataset train = Digits(1), adapt = Digits(2);
        // Phase 1: the MLP with Adam 1e-3 on shuffled batches of 64.
        Mlp model = Mlp.Blog(gen);
        var losses = ReferenceFit(model, new Adam(model.Parameters(), 1e-3),
            new DataLoader(train, 64, shuffle: true, generator: gen), 2);
        // Phase 2: a rank-4 SVD adapter on layers.5 with Adam 5e-3, the same generator continuing.
        PeftModel peft = LoraModel.GetPeftModel(model, Adapter, gen);
        losses.AddRange(ReferenceFit(peft, new Adam(peft.TrainableParameters(), 5e-3),
            new DataLoader(adapt, 64, shuffle: true, generator: gen), 2));
        return (peft, losses);
    }

    private static (PeftModel Peft, List<float> Losses) Recipe()
    {
        var gen = new TorchGenerator(7);
        MnistDataset train = Digits(1), adapt = Digits(2);
        var (model, phase1) = ClassifierTraining.TrainBlogMlp(train,
            new ClassifierTrainingOptions { Epochs = 2, LearningRate = 1e-3 }, gen);
        var (peft, phase2) = ClassifierTraining.FineTune(model, Adapter, adapt,
            new ClassifierTrainingOptions { Epochs = 2, LearningRate = 5e-3 }, gen);
        return (peft, phase1.StepLosses.Concat(phase2.StepLosses).ToList());
    }

    [Test]
    public void RecipeTrainsBitwiseLikeThePlainLoop()
    {
        var (oldPeft, oldLosses) = Reference();
        var (newPeft, newLosses) = Recipe();
        Assert.That(newLosses, Has.Count.EqualTo(2 * 3 + 2 * 3));
        Assert.That(newLosses, Is.EqualTo(oldLosses).AsCollection, "every step's loss, exactly");
        var oldParams = oldPeft.NamedParameters().ToDictionary(p => p.Key, p => p.Value);
        foreach (var (name, p) in newPeft.NamedParameters())
            Assert.That(p.Array, Is.EqualTo(oldParams[name].Array).AsCollection, name); // exact float equality
        Assert.That(newLosses[^1], Is.Not.EqualTo(newLosses[6]), "the adapter trained");
    }
}
