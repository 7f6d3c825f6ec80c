using System.Diagnostics;
using LoRA.Managed.Autograd;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Training;

/// <summary>
/// Hugging Face's <c>Trainer</c> for any model: the task (<see cref="ITrainingTask{TBatch}"/>) supplies batches, the
/// loss and evaluation metrics; the <see cref="TrainingArguments"/> say how to train. Each optimiser step: set the
/// scheduled rate, forward and backward each of the <c>gradient_accumulation_steps</c> micro-batches (each in a
/// <see cref="TensorArena"/>, so a steady-state step allocates no tensors), clip, then step and zero the gradients in
/// one pass (<see cref="Optimizer.StepAndZeroGrad"/>). Every model and task, from the blog's MLP to a Hugging Face
/// causal LM, trains through this one loop.
/// Evaluation, checkpoints (<see cref="TrainerCheckpoint"/>), rotation and restoring the best follow the arguments.
/// </summary>
/// <remarks>
/// Default optimiser: AdamW with decoupled weight decay on every trainable parameter except 1-D ones (biases and
/// LayerNorm weights), as HF's <c>get_decay_parameter_names</c>; or plain Adam (<see cref="OptimizerType.Adam"/>).
/// A NaN or infinite loss stops training with an <see cref="ArithmeticException"/> naming the epoch and step; no
/// checkpoint is written after it (nor of non-finite weights), so the last one on disk is good.
/// Resuming (HF's <c>resume_from_checkpoint</c>): every checkpoint is a full one
/// (<see cref="TrainerCheckpoint.LoadFull(Module, Optimizer, string)"/>, <see cref="TrainingPosition"/>); with the
/// model, optimiser and task rebuilt from the same seed and thread count, the resumed run's parameters and per-step
/// losses equal the uninterrupted run's bit for bit. The epoch's order is regenerated from the saved generator state
/// (<see cref="IResumableTask{TBatch}"/>) and the used batches skipped.
/// </remarks>
public sealed partial class Trainer
{
    private readonly LrSchedule? _schedule;
    private Run? _run;

    /// <summary>
    /// Prepares training of <paramref name="model"/>'s trainable parameters (those with <c>RequiresGrad</c> now).
    /// HF's <c>optimizers=(optimizer, scheduler)</c>: pass either to use it instead of the one the arguments describe.
    /// </summary>
    /// <exception cref="ArgumentException">The arguments are invalid (the message names the field), or nothing is
    /// trainable.</exception>
    public Trainer(Module model, TrainingArguments args, Optimizer? optimizer = null, LrSchedule? schedule = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(args);
        args.Validate();
        Model = model;
        Args = args;
        Optimizer = optimizer ?? CreateOptimizer(model, args);
        _schedule = schedule;
    }

    /// <summary>The model being trained.</summary>
    public Module Model { get; }

    /// <summary>The arguments.</summary>
    public TrainingArguments Args { get; }

    /// <summary>The optimiser (built from the arguments unless one was given).</summary>
    public Optimizer Optimizer { get; }

    /// <summary>Every step's loss so far, also while <see cref="Train{TBatch}"/> runs or after it failed.</summary>
    public IReadOnlyList<float> StepLosses => _run?.Losses ?? [];

    /// <summary>
    /// The optimiser <paramref name="args"/> describe over <paramref name="model"/>'s trainable parameters: AdamW with
    /// <see cref="NoDecayParameters"/> exempt from decay, or Adam.
    /// </summary>
    /// <exception cref="ArgumentException">The model has no trainable parameter.</exception>
    public static Optimizer CreateOptimizer(Module model, TrainingArguments args)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(args);
        var trainable = model.TrainableParameters().ToList();
        if (trainable.Count == 0)
            throw new ArgumentException("Trainer: the model has no trainable parameter (is everything frozen?).");
        return args.Optimizer == OptimizerType.Adam
            ? new Adam(trainable, args.LearningRate, args.AdamBeta1, args.AdamBeta2, args.AdamEpsilon, args.WeightDecay)
            : new AdamW(trainable, args.LearningRate, args.AdamBeta1, args.AdamBeta2, args.AdamEpsilon,
                args.WeightDecay, NoDecayParameters(trainable));
    }

    /// <summary>Parameters exempt from decoupled weight decay: the 1-D ones (biases, LayerNorm weights and biases), as
    /// HF does.</summary>
    public static IReadOnlyList<Parameter> NoDecayParameters(IEnumerable<Parameter> parameters) =>
        parameters.Where(p => p.Rank <= 1).ToList();

    /// <summary>The schedule <paramref name="args"/> describe for a run of <paramref name="totalSteps"/> optimiser
    /// steps.</summary>
    public static LrSchedule CreateSchedule(TrainingArguments args, int totalSteps)
    {
        ArgumentNullException.ThrowIfNull(args);
        int warmup = args.WarmupStepsFor(totalSteps);
        return args.LrSchedulerType switch
        {
            LrSchedulerType.Cosine => LrSchedules.WarmupCosine(args.LearningRate, warmup, totalSteps),
            LrSchedulerType.Linear => LrSchedules.WarmupLinear(args.LearningRate, warmup, totalSteps),
            _ => LrSchedules.WarmupConstant(args.LearningRate, warmup),
        };
    }

    /// <summary>The task's metrics on its evaluation data (HF's <c>trainer.evaluate()</c>).</summary>
    public IReadOnlyDictionary<string, double> Evaluate<TBatch>(ITrainingTask<TBatch> task)
    {
        ArgumentNullException.ThrowIfNull(task);
        return task.Evaluate(Model, Args.PerDeviceEvalBatchSize);
    }

    /// <summary>Trains (HF's <c>trainer.train()</c>); see the class summary.</summary>
    /// <param name="task">Batches, loss and metrics.</param>
    /// <param name="progress">Receives a report after every optimiser step, synchronously on this thread.</param>
    /// <param name="cancellation">
    /// Checked before every optimiser step. With <see cref="TrainingArguments.SaveOnCancel"/>, a
    /// checkpoint of the current step is written first; then <see cref="TrainingCanceledException"/> is thrown, naming
    /// it.
    /// </param>
    /// <param name="resumeFrom">
    /// HF's <c>resume_from_checkpoint</c>: a <c>checkpoint-{step}</c> folder this trainer wrote; overrides
    /// <see cref="TrainingArguments.ResumeFromCheckpoint"/>. The model, optimiser and task must be built as for the
    /// interrupted run (same seed); the run then continues bit for bit as if never stopped.
    /// </param>
    /// <exception cref="ArithmeticException">A loss is NaN or infinite; the message names the epoch and step. No
    /// checkpoint is written after it.</exception>
    /// <exception cref="KeyNotFoundException">The evaluation lacks
    /// <see cref="TrainingArguments.MetricForBestModel"/>.</exception>
    /// <exception cref="ArgumentException">The checkpoint comes from a run of another shape (batch size, steps;
    /// named).</exception>
    public TrainerResult Train<TBatch>(ITrainingTask<TBatch> task, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellation = default,
        string? resumeFrom = null)
    {
        ArgumentNullException.ThrowIfNull(task);
        int batchSize = Args.PerDeviceTrainBatchSize, accumulation = Args.GradientAccumulationSteps;
        int batchesPerEpoch = task.BatchesPerEpoch(batchSize);
        if (batchesPerEpoch <= 0) throw new ArgumentException("Trainer: the task yields no training batch.");
        // HF: an epoch ends with an optimiser step even when its last accumulation group is short.
        int stepsPerEpoch = (batchesPerEpoch + accumulation - 1) / accumulation;
        int totalSteps = Args.MaxSteps > 0 ? Args.MaxSteps : Args.NumTrainEpochs * stepsPerEpoch;
        int epochs = Args.MaxSteps > 0 ? (Args.MaxSteps + stepsPerEpoch - 1) / stepsPerEpoch : Args.NumTrainEpochs;
        LrSchedule schedule = _schedule ?? CreateSchedule(Args, totalSteps);
        var resumable = task as IResumableTask<TBatch>;
        var run = _run = new Run(this, epochs, new RunShape(batchSize, accumulation, batchesPerEpoch, totalSteps),
            resumable?.OrderGenerator);

        TrainingPosition? resume = null;
        resumeFrom ??= Args.ResumeFromCheckpoint;
        if (resumeFrom is not null)
        {
            resume = run.Resume(resumeFrom);
            run.RestoreModelGenerators(resumeFrom, resume.ModelRng);
        }

        Model.Train();
        Optimizer.ZeroGrad(); // once: from here on each step leaves the gradients zeroed (StepAndZeroGrad)
        var arena = new TensorArena();
        Cursor c = run.Cursor;
        c.GlobalStep = resume?.GlobalStep ?? 0;
        c.Epoch = resume is null ? 0 : resume.Epoch - 1;
        while (c.GlobalStep < totalSteps && c.Epoch < epochs)
        {
            c.Epoch++;
            var clock = Stopwatch.StartNew();
            int skip = resume?.BatchIndex ?? 0;
            if (resume?.EpochStartRng is { } epochStart) run.Generator?.SetState(epochStart);
            c.EpochStartRng = run.Generator?.GetState();
            c.EpochLoss = resume?.EpochLossSum ?? 0;
            c.EpochSamples = resume?.EpochSamples ?? 0;
            c.StepInEpoch = resume?.StepInEpoch ?? 0;
            c.BatchIndex = skip;
            IEnumerable<TBatch> epochBatches = resumable is not null ? resumable.Batches(batchSize, skip)
                : task.Batches(batchSize).Skip(skip);
            using IEnumerator<TBatch> batches = epochBatches.GetEnumerator();
            bool more = batches.MoveNext();
            // The epoch's order is drawn by now; restore the draws made after it before the checkpoint (e.g.
            // dropout's).
            if (resume?.CurrentRng is { } current) run.Generator?.SetState(current);
            resume = null;
            while (more && c.GlobalStep < totalSteps)
            {
                // The one place cancellation is honoured: between two steps, where a checkpoint is whole.
                if (cancellation.IsCancellationRequested)
                    throw new TrainingCanceledException(c.GlobalStep, run.SaveOnCancel(c.GlobalStep), cancellation);
                Optimizer.LearningRate = schedule(Optimizer.StepCount);
                int group = Math.Min(accumulation, batchesPerEpoch - c.BatchIndex);
                double stepLoss = 0;
                int stepSamples = 0, micro = 0;
                float value = 0f;
                for (; micro < group && more; micro++)
                {
                    int samples = task.SampleCount(batches.Current);
                    using (arena.Activate())
                    {
                        Tensor loss = task.ComputeLoss(Model, batches.Current);
                        value = loss.Item();
                        if (!float.IsFinite(value))
                        {
                            Tape.Current.Clear();
                            string where = accumulation > 1 ? $", micro-batch {micro + 1} of {group}" : "";
                            throw new ArithmeticException(
                                $"Training diverged: loss is {value} at epoch {c.Epoch}, step {c.StepInEpoch + 1} of " +
                                $"{stepsPerEpoch}{where} (global step {c.GlobalStep + 1}); lower the learning rate " +
                                $"or normalise the inputs.{run.LastCheckpointNote()}");
                        }
                        // Each micro-batch's mean loss is divided by the group size, so the summed gradients are the
                        // gradient of the mean over the group: that of one batch `group` times larger (equal sizes).
                        if (group > 1) loss = Functional.Scale(loss, 1f / group);
                        loss.Backward();
                    }
                    stepLoss += (double)value * samples;
                    stepSamples += samples;
                    c.BatchIndex++;
                    more = batches.MoveNext();
                }
                if (Args.MaxGradNorm is > 0 and double max) ClipGradNorm(Optimizer.Parameters, max);
                Optimizer.StepAndZeroGrad();
                c.GlobalStep++;
                c.StepInEpoch++;
                float reported = micro == 1 ? value : (float)(stepLoss / stepSamples);
                run.Learn(reported, Optimizer.LearningRate);
                c.EpochLoss += stepLoss;
                c.EpochSamples += stepSamples;
                progress?.Report(new TrainingProgress(c.Epoch, epochs, c.StepInEpoch, stepsPerEpoch, c.GlobalStep,
                    reported,
                    c.EpochLoss / c.EpochSamples, c.EpochSamples / Math.Max(clock.Elapsed.TotalSeconds, 1e-9),
                    Optimizer.LearningRate));
                if (c.GlobalStep % Args.LoggingSteps == 0) run.Log(c.GlobalStep, c.Epoch);
                run.MaybeEvaluateAndSave(task,
                    Args.EvalStrategy == IntervalStrategy.Steps && c.GlobalStep % Args.EvalSteps == 0,
                    Args.SaveStrategy == IntervalStrategy.Steps && c.GlobalStep % Args.SaveSteps == 0);
            }
            run.MaybeEvaluateAndSave(task, Args.EvalStrategy == IntervalStrategy.Epoch,
                Args.SaveStrategy == IntervalStrategy.Epoch);
        }
        return run.Finish();
    }

    /// <summary>
    /// <c>torch.nn.utils.clip_grad_norm_</c>: when the L2 norm of all gradients together exceeds
    /// <paramref name="maxNorm"/>, scales every gradient by <c>maxNorm / (norm + 1e-6)</c>. Returns the norm before
    /// clipping.
    /// </summary>
    public static double ClipGradNorm(IEnumerable<Parameter> parameters, double maxNorm)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return ClipGradNorm(parameters as IReadOnlyList<Parameter> ?? parameters.ToArray(), maxNorm);
    }

    // By index: the trainer calls this every step with the optimizer's list, and enumerating it through
    // IEnumerable would allocate two enumerators per step.
    internal static double ClipGradNorm(IReadOnlyList<Parameter> parameters, double maxNorm)
    {
        double sum = 0;
        for (int i = 0; i < parameters.Count; i++)
            if (parameters[i] is { RequiresGrad: true, HasGrad: true } p)
            {
                double n = TensorPrimitives.Norm<float>(p.Grad);
                sum += n * n;
            }
        double norm = Math.Sqrt(sum);
        double coefficient = maxNorm / (norm + 1e-6);
        if (coefficient < 1)
            for (int i = 0; i < parameters.Count; i++)
                if (parameters[i] is { RequiresGrad: true, HasGrad: true } p)
                    TensorPrimitives.Multiply(p.Grad, (float)coefficient, p.Grad);
        return norm;
    }
}
