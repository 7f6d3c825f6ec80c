using LoRA.Managed.Data;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;
using LoRA.Managed.Training;

namespace LoRA.Managed.Cli;

/// <summary>
/// The blog's two training phases. As in the blog's script, one generator (PyTorch's global one after
/// <c>torch.manual_seed(seed)</c>) draws the initial weights, then every epoch's order, then the adapter.
/// </summary>
internal static class BlogTraining
{
    /// <summary>Phase 1: the 784→512→256→10 MLP trained with Adam and cross-entropy on shuffled batches.</summary>
    public static (Mlp Model, ClassifierTrainer Trainer) Train(CliContext context, string label, MnistDataset train,
        int epochs, double learningRate, int batchSize, TorchGenerator generator)
    {
        Mlp model = Mlp.Blog(generator);
        var trainer = Fit(context, label, model, model.Parameters(), train, epochs, learningRate, batchSize, generator);
        return (model, trainer);
    }

    /// <summary>Phase 2: wrap <paramref name="model"/>'s targets with adapters and train only those with Adam.</summary>
    public static (PeftModel Model, ClassifierTrainer Trainer) FineTune(CliContext context, string label, Module model, LoraConfig config,
        MnistDataset train, int epochs, double learningRate, int batchSize, TorchGenerator generator)
    {
        PeftModel peft = LoraModel.Wrap(model, config, generator);
        context.Output.WriteLine(peft.TrainableParameterSummary());
        var trainer = Fit(context, label, peft, peft.TrainableParameters(), train, epochs, learningRate, batchSize, generator);
        return (peft, trainer);
    }

    private static ClassifierTrainer Fit(CliContext context, string label, Module model, IEnumerable<Parameter> parameters,
        MnistDataset train, int epochs, double learningRate, int batchSize, TorchGenerator generator)
    {
        var loader = new DataLoader(train, batchSize, shuffle: true, generator: generator);
        var optimizer = new Adam(parameters, learningRate);
        var trainer = new ClassifierTrainer();
        TrainingView.Run(context, label, epochs, loader.BatchCount,
            progress => trainer.Fit(model, optimizer, loader, epochs, schedule: null, progress));
        return trainer;
    }
}
