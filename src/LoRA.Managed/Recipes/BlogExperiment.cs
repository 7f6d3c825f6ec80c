using System.Diagnostics;
using LoRA.Managed.Data;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Tensors;
using LoRA.Managed.Training;

namespace LoRA.Managed.Recipes;

/// <summary>The blog experiment's knobs; the defaults are the blog's.</summary>
public sealed record BlogExperimentOptions
{
    /// <summary><c>torch.manual_seed(seed)</c>: the initial weights, every epoch's order and the adapter's
    /// init.</summary>
    public ulong Seed { get; init; }

    /// <summary>Epochs of base training on 0–7 (the blog: 5).</summary>
    public int Epochs { get; init; } = 5;

    /// <summary>Epochs of adapter training on 8–9 (the blog: 3).</summary>
    public int LoraEpochs { get; init; } = 3;

    /// <summary>The adapter (the blog: rank 4, α = 1, scale α, SVD init, the last layer).</summary>
    public LoraConfig Lora { get; init; } = BlogExperiment.BlogLora;

    /// <summary>
    /// The fraction of the 0–7 training set replayed in a second adapter phase (0: none, the blog's recipe only).
    /// Above 0, phase 2 runs twice from the same trained base model and the same generator state: once on 8–9 as
    /// the blog, once on 8–9 plus ⌊fraction × |train 0–7|⌋ samples of 0–7 (<see cref="ReplaySampling.Indices"/>
    /// draws them first from that state, then the adapter and the epochs draw as usual), same adapter and settings.
    /// </summary>
    public double Replay { get; init; }
}

/// <summary>The adapter phase rerun with replay (<see cref="BlogExperimentOptions.Replay"/>).</summary>
/// <param name="Fraction">The fraction of train 0–7 replayed.</param>
/// <param name="ReplaySamples">How many 0–7 samples were replayed.</param>
/// <param name="TrainSamples">The phase's training set: train 8–9 plus the replayed samples.</param>
/// <param name="Lora89">The adapted model on test 8–9.</param>
/// <param name="Lora0To7">The adapted model on test 0–7.</param>
/// <param name="Adapted">The copy of the base model with this adapter.</param>
/// <param name="Training">The phase's steps.</param>
/// <param name="Parameters">Trainable parameters of the adapter.</param>
/// <param name="Seconds">Wall time of the phase.</param>
public sealed record ReplayRun(double Fraction, int ReplaySamples, int TrainSamples, EvaluationResult Lora89,
    EvaluationResult Lora0To7, PeftModel Adapted, TrainerResult Training, long Parameters, double Seconds);

/// <summary>The figures of one run of the blog experiment, and the models it trained.</summary>
/// <param name="Base0To7">The base model on test 0–7.</param>
/// <param name="Base89">The base model on test 8–9 (it has never seen them).</param>
/// <param name="Lora89">The adapted model on test 8–9.</param>
/// <param name="Lora0To7">The adapted model on test 0–7: how much it forgets, which the blog does not show.</param>
/// <param name="BaseModel">The trained MLP, as it was after phase 1 (a copy: phase 2 adapts the original in
/// place).</param>
/// <param name="Adapted">The MLP with its adapter.</param>
/// <param name="BaseTraining">Phase 1's steps.</param>
/// <param name="LoraTraining">Phase 2's steps.</param>
/// <param name="BaseParameters">Trainable parameters of the base model (the blog: 535,818).</param>
/// <param name="LoraParameters">Trainable parameters of the adapter (the blog: 1,064).</param>
/// <param name="SecondsBase">Wall time of phase 1.</param>
/// <param name="SecondsLora">Wall time of phase 2.</param>
public sealed record BlogExperimentResult(
    EvaluationResult Base0To7, EvaluationResult Base89, EvaluationResult Lora89, EvaluationResult Lora0To7,
    Mlp BaseModel, PeftModel Adapted, TrainerResult BaseTraining, TrainerResult LoraTraining,
    long BaseParameters, long LoraParameters, double SecondsBase, double SecondsLora)
{
    /// <summary>The adapter phase rerun with replay; null when <see cref="BlogExperimentOptions.Replay"/> is
    /// 0.</summary>
    public ReplayRun? Replay { get; init; }
}

/// <summary>
/// The blog's experiment, step 2 (A Deep Dive Into Low-Rank Adaptation): train <c>784→512→256→10</c> on digits 0–7
/// (Adam 1e-3, batch 64), freeze it, wrap the last layer with a rank-4 adapter and train only the adapter on 8–9
/// (Adam 5e-3), measuring both test sets before and after.
/// </summary>
public static class BlogExperiment
{
    /// <summary>The digits the base model learns.</summary>
    public static DigitSet BaseDigits { get; } = DigitSet.Parse("0-7");

    /// <summary>The digits the adapter learns.</summary>
    public static DigitSet NewDigits { get; } = DigitSet.Parse("8,9");

    /// <summary>The blog's rates and batch size.</summary>
    public const double BaseLearningRate = 1e-3, LoraLearningRate = 5e-3;

    /// <summary>The blog's batch size.</summary>
    public const int BatchSize = 64;

    /// <summary>The blog's adapter: rank 4, α = 1 with scale α, SVD-initialised, on <c>layers.5</c>.</summary>
    public static LoraConfig BlogLora => new()
    {
        Rank = 4, Alpha = 1, Scaling = LoraScaling.Alpha, Init = LoraInit.Svd, TargetModules = ["layers.5"],
    };

    /// <summary>Runs both phases on MNIST's <paramref name="train"/> and <paramref name="test"/> splits.</summary>
    /// <exception cref="TrainingCanceledException">Cancelled between two steps.</exception>
    public static BlogExperimentResult Run(MnistDataset train, MnistDataset test, BlogExperimentOptions options,
        RecipeObserver? observer = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        ArgumentNullException.ThrowIfNull(options);
        observer ??= RecipeObserver.Silent;
        MnistDataset test0To7 = test.Filter(BaseDigits), test89 = test.Filter(NewDigits);
        var generator = new TorchGenerator(options.Seed);

        MnistDataset train0To7 = train.Filter(BaseDigits);
        observer.Message($"phase 1: base model on digits {BaseDigits} ({train0To7.Count:N0} samples)");
        var clock = Stopwatch.StartNew();
        Mlp model = Mlp.Blog(generator);
        LoraModel.Validate(model, options.Lora); // a bad adapter configuration is refused before phase 1's seconds
        TrainerResult baseTraining = ClassifierTraining.Fit(model, train0To7,
            new ClassifierTrainingOptions { Epochs = options.Epochs, LearningRate = BaseLearningRate,
                BatchSize = BatchSize, Label = "base 0-7" },
            generator, observer, cancellation);
        double secondsBase = clock.Elapsed.TotalSeconds;
        long baseParameters = model.ParameterCount();
        Mlp baseCopy = Mlp.Blog(new TorchGenerator(0));
        baseCopy.LoadStateDict(model.StateDict().ToDictionary(p => p.Key, p => p.Value.Clone()));
        EvaluationResult base0To7 = ClassifierEvaluation.Evaluate(model, test0To7),
            base89 = ClassifierEvaluation.Evaluate(model, test89);

        MnistDataset train89 = train.Filter(NewDigits);
        ReplaySampling.Count(options.Replay, train0To7.Count); // a bad fraction is refused before phase 2
        GeneratorState afterBase = generator.GetState();
        observer.Message($"phase 2: LoRA on digits {NewDigits} ({train89.Count:N0} samples)");
        clock.Restart();
        var (peft, loraTraining) = ClassifierTraining.FineTune(model, options.Lora, train89,
            new ClassifierTrainingOptions { Epochs = options.LoraEpochs, LearningRate = LoraLearningRate,
                BatchSize = BatchSize, Label = "LoRA 8-9" },
            generator, observer, cancellation);
        double secondsLora = clock.Elapsed.TotalSeconds;
        EvaluationResult lora89 = ClassifierEvaluation.Evaluate(peft, test89),
            lora0To7 = ClassifierEvaluation.Evaluate(peft, test0To7);
        ReplayRun? replay = options.Replay > 0
            ? RunReplay(baseCopy, train89, train0To7, test89, test0To7, options, afterBase, observer, cancellation)
            : null;
        return new BlogExperimentResult(base0To7, base89, lora89, lora0To7, baseCopy, peft, baseTraining, loraTraining,
            baseParameters, peft.TrainableParameterCount, secondsBase, secondsLora) { Replay = replay };
    }

    // Phase 2 again on a fresh copy of the base model, from the generator state phase 2 started from.
    private static ReplayRun RunReplay(Mlp baseModel, MnistDataset train89, MnistDataset train0To7,
        MnistDataset test89, MnistDataset test0To7, BlogExperimentOptions options, GeneratorState afterBase,
        RecipeObserver observer, CancellationToken cancellation)
    {
        var clock = Stopwatch.StartNew();
        var generator = new TorchGenerator(options.Seed);
        generator.SetState(afterBase);
        MnistDataset mixed = ReplaySampling.Mix(train89, train0To7, options.Replay, generator);
        int replayed = mixed.Count - train89.Count;
        string share = options.Replay.ToString("P1", System.Globalization.CultureInfo.InvariantCulture);
        observer.Message(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"phase 2 with replay: LoRA on digits {NewDigits} plus {replayed:N0} replayed samples of " +
            $"{BaseDigits} ({share})"));
        Mlp model = Mlp.Blog(new TorchGenerator(0));
        model.LoadStateDict(baseModel.StateDict().ToDictionary(p => p.Key, p => p.Value.Clone()));
        var (peft, training) = ClassifierTraining.FineTune(model, options.Lora, mixed,
            new ClassifierTrainingOptions
            {
                Epochs = options.LoraEpochs, LearningRate = LoraLearningRate, BatchSize = BatchSize,
                Label = "LoRA 8-9 + replay",
            },
            generator, observer, cancellation);
        double seconds = clock.Elapsed.TotalSeconds;
        return new ReplayRun(options.Replay, replayed, mixed.Count, ClassifierEvaluation.Evaluate(peft, test89),
            ClassifierEvaluation.Evaluate(peft, test0To7), peft, training, peft.TrainableParameterCount, seconds);
    }
}
