using LoRA.Managed.Data;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using LoRA.Managed.Training;

namespace LoRA.Managed.Recipes;

/// <summary>How to train a classifier on MNIST digits (the blog's settings by default: Adam 1e-3, batch 64, 5
/// epochs).</summary>
public sealed record ClassifierTrainingOptions
{
    /// <summary>Passes over the training set.</summary>
    public int Epochs { get; init; } = 5;

    /// <summary>Adam's constant learning rate.</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>Samples per batch.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>The phase's name in progress reports.</summary>
    public string Label { get; init; } = "train";

    /// <summary>Where <c>checkpoint-{step}</c> folders go; null: no checkpoints, not even on cancellation.</summary>
    public string? CheckpointDirectory { get; init; }

    /// <summary>Write a checkpoint every this many steps (0: only when cancelled).</summary>
    public int CheckpointEvery { get; init; }

    /// <summary>A checkpoint folder to continue from, bit for bit (same options and seed as the interrupted
    /// run).</summary>
    public string? ResumeFrom { get; init; }

    /// <summary>Keep at most this many checkpoint folders (HF's <c>save_total_limit</c>); null keeps all.</summary>
    public int? SaveTotalLimit { get; init; }

    /// <summary>
    /// Settings outside the trainer's arguments that a resume must match (e.g. the digits, the normalisation): saved in
    /// every checkpoint and compared on resume (<see cref="TrainingArguments.RunTags"/>).
    /// </summary>
    public IReadOnlyDictionary<string, string> RunTags { get; init; } = new Dictionary<string, string>();
}

/// <summary>
/// The blog's two training phases as library calls, both through the one <see cref="Trainer"/> loop: the MLP trained
/// with Adam and cross-entropy on shuffled batches, then the frozen MLP wrapped with LoRA and only the adapter trained.
/// As in the blog's script, one generator (PyTorch's global one after <c>torch.manual_seed(seed)</c>) draws the
/// initial weights, then every epoch's order, then the adapter.
/// </summary>
public static class ClassifierTraining
{
    /// <summary>Phase 1: a new 784→512→256→10 MLP (<see cref="Mlp.Blog"/>) trained on
    /// <paramref name="train"/>.</summary>
    /// <exception cref="TrainingCanceledException">Cancelled; it names the checkpoint written, if any.</exception>
    public static (Mlp Model, TrainerResult Result) TrainBlogMlp(MnistDataset train, ClassifierTrainingOptions options,
        TorchGenerator generator, RecipeObserver? observer = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(generator);
        Mlp model = Mlp.Blog(generator);
        return (model, Fit(model, train, options, generator, observer, cancellation));
    }

    /// <summary>Phase 2: wraps <paramref name="model"/>'s targets with adapters and trains only those.</summary>
    /// <exception cref="TrainingCanceledException">Cancelled; it names the checkpoint written, if any.</exception>
    public static (PeftModel Model, TrainerResult Result) FineTune(Module model, LoraConfig config, MnistDataset train,
        ClassifierTrainingOptions options, TorchGenerator generator, RecipeObserver? observer = null,
        CancellationToken cancellation = default)
    {
        PeftModel peft = LoraModel.GetPeftModel(model, config, generator);
        (observer ?? RecipeObserver.Silent).Message(peft.TrainableParameterSummary());
        return (peft, Fit(peft, train, options, generator, observer, cancellation));
    }

    /// <summary>
    /// Trains <paramref name="model"/>'s trainable parameters with Adam at a constant rate, no clipping and no weight
    /// decay, on batches reshuffled every epoch from <paramref name="generator"/> (PyTorch's <c>DataLoader</c> order).
    /// </summary>
    /// <exception cref="TrainingCanceledException">Cancelled; it names the checkpoint written, if any.</exception>
    public static TrainerResult Fit(Module model, MnistDataset train, ClassifierTrainingOptions options,
        TorchGenerator generator,
        RecipeObserver? observer = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(options);
        observer ??= RecipeObserver.Silent;
        var loader = new DataLoader(train, options.BatchSize, shuffle: true, generator: generator);
        var args = new TrainingArguments
        {
            PerDeviceTrainBatchSize = options.BatchSize, NumTrainEpochs = options.Epochs,
            LearningRate = options.LearningRate,
            Optimizer = OptimizerType.Adam, LrSchedulerType = LrSchedulerType.Constant, WeightDecay = 0,
            MaxGradNorm = null,
            LoggingSteps = int.MaxValue, RunTags = options.RunTags,
        };
        if (options.CheckpointDirectory is { } dir)
            args = args with
            {
                OutputDir = dir, SaveOnCancel = true, SaveTotalLimit = options.SaveTotalLimit,
                SaveStrategy = options.CheckpointEvery > 0 ? IntervalStrategy.Steps : IntervalStrategy.No,
                SaveSteps = options.CheckpointEvery > 0 ? options.CheckpointEvery : args.SaveSteps,
            };
        if (options.ResumeFrom is { } resume) observer.Message($"resuming from {Path.GetFullPath(resume)}");
        var trainer = new Trainer(model, args);
        TrainerResult? result = null;
        observer.RunPhase(new TrainingPhase(options.Label, options.Epochs, loader.BatchCount),
            progress => result = trainer.Train(new ClassificationTask(loader), progress, cancellation,
                options.ResumeFrom));
        return result!;
    }
}
