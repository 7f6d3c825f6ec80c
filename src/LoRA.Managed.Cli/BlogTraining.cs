using LoRA.Managed.Data;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;
using LoRA.Managed.Training;

namespace LoRA.Managed.Cli;

/// <summary>
/// The blog's base training: <c>torch.manual_seed(seed)</c>, the 784→512→256→10 MLP, Adam, cross-entropy,
/// shuffled batches. One generator draws the initial weights and then every epoch's order, as PyTorch's
/// global generator does.
/// </summary>
internal static class BlogTraining
{
    public static (Mlp Model, ClassifierTrainer Trainer) Train(CliContext context, string label, MnistDataset train,
        int epochs, double learningRate, int batchSize, ulong seed)
    {
        var generator = new TorchGenerator(seed);
        Mlp model = Mlp.Blog(generator);
        var loader = new DataLoader(train, batchSize, shuffle: true, generator: generator);
        var optimizer = new Adam(model.Parameters(), learningRate);
        var trainer = new ClassifierTrainer();
        TrainingView.Run(context, label, epochs, loader.BatchCount,
            progress => trainer.Fit(model, optimizer, loader, epochs, schedule: null, progress));
        return (model, trainer);
    }
}
