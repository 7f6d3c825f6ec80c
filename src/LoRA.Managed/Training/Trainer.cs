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
/// scheduled rate, zero the gradients, forward and backward each of the <c>gradient_accumulation_steps</c>
/// micro-batches (each in a <see cref="TensorArena"/>, so a steady-state step allocates no tensors), clip, step.
/// Evaluation, checkpoints (<see cref="TrainerCheckpoint"/>), rotation and restoring the best follow the arguments.
/// </summary>
/// <remarks>
/// Default optimiser: AdamW with decoupled weight decay on every trainable parameter except 1-D ones (biases and
/// LayerNorm weights), as HF's <c>get_decay_parameter_names</c>; or plain Adam (<see cref="OptimizerType.Adam"/>).
/// A NaN or infinite loss stops training with an <see cref="ArithmeticException"/> naming the epoch and step.
/// </remarks>
public sealed class Trainer
{
    private readonly LrSchedule? _schedule;
    private readonly List<float> _stepLosses = [];

    /// <summary>
    /// Prepares training of <paramref name="model"/>'s trainable parameters (those with <c>RequiresGrad</c> now).
    /// HF's <c>optimizers=(optimizer, scheduler)</c>: pass either to use it instead of the one the arguments describe.
    /// </summary>
    /// <exception cref="ArgumentException">The arguments are invalid (the message names the field), or nothing is trainable.</exception>
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
    public IReadOnlyList<float> StepLosses => _stepLosses;

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
        if (trainable.Count == 0) throw new ArgumentException("Trainer: the model has no trainable parameter (is everything frozen?).");
        return args.Optimizer == OptimizerType.Adam
            ? new Adam(trainable, args.LearningRate, args.AdamBeta1, args.AdamBeta2, args.AdamEpsilon, args.WeightDecay)
            : new AdamW(trainable, args.LearningRate, args.AdamBeta1, args.AdamBeta2, args.AdamEpsilon, args.WeightDecay, NoDecayParameters(trainable));
    }

    /// <summary>Parameters exempt from decoupled weight decay: the 1-D ones (biases, LayerNorm weights and biases), as HF does.</summary>
    public static IReadOnlyList<Parameter> NoDecayParameters(IEnumerable<Parameter> parameters) =>
        parameters.Where(p => p.Rank <= 1).ToList();

    /// <summary>The schedule <paramref name="args"/> describe for a run of <paramref name="totalSteps"/> optimiser steps.</summary>
    public static LrSchedule CreateSchedule(TrainingArguments args, int totalSteps)
    {
        ArgumentNullException.ThrowIfNull(args);
        int warmup = args.WarmupStepsFor(totalSteps);
        return args.LrSchedulerType switch
        {
            LrSchedulerType.Cosine => new WarmupCosineSchedule(args.LearningRate, warmup, totalSteps),
            LrSchedulerType.Linear => new WarmupLinearSchedule(args.LearningRate, warmup, totalSteps),
            _ => new WarmupConstantSchedule(args.LearningRate, warmup),
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
    /// <param name="cancellation">Checked before every micro-batch.</param>
    /// <exception cref="ArithmeticException">A loss is NaN or infinite; the message names the epoch and step.</exception>
    /// <exception cref="KeyNotFoundException">The evaluation lacks <see cref="TrainingArguments.MetricForBestModel"/>.</exception>
    public TrainerResult Train<TBatch>(ITrainingTask<TBatch> task, IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
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
        var run = new Run(this, epochs);

        Model.Train();
        var arena = new TensorArena();
        int globalStep = 0, epoch = 0;
        while (globalStep < totalSteps && epoch < epochs)
        {
            epoch++;
            var clock = Stopwatch.StartNew();
            double epochLoss = 0;
            int epochSamples = 0, stepInEpoch = 0, batchIndex = 0;
            using IEnumerator<TBatch> batches = task.Batches(batchSize).GetEnumerator();
            bool more = batches.MoveNext();
            while (more && globalStep < totalSteps)
            {
                schedule.Apply(Optimizer, Optimizer.StepCount);
                Optimizer.ZeroGrad();
                int group = Math.Min(accumulation, batchesPerEpoch - batchIndex);
                double stepLoss = 0;
                int stepSamples = 0, micro = 0;
                float value = 0f;
                for (; micro < group && more; micro++)
                {
                    cancellation.ThrowIfCancellationRequested();
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
                                $"Training diverged: loss is {value} at epoch {epoch}, step {stepInEpoch + 1} of {stepsPerEpoch}{where} (global step {globalStep + 1}); lower the learning rate or normalise the inputs.");
                        }
                        // Each micro-batch's mean loss is divided by the group size, so the summed gradients are the
                        // gradient of the mean over the group: that of one batch `group` times larger (equal sizes).
                        if (group > 1) loss = Functional.Scale(loss, 1f / group);
                        loss.Backward();
                    }
                    stepLoss += (double)value * samples;
                    stepSamples += samples;
                    batchIndex++;
                    more = batches.MoveNext();
                }
                if (Args.MaxGradNorm is > 0 and double max) ClipGradNorm(Optimizer.Parameters, max);
                Optimizer.Step();
                globalStep++;
                stepInEpoch++;
                float reported = micro == 1 ? value : (float)(stepLoss / stepSamples);
                _stepLosses.Add(reported);
                run.Learn(reported, Optimizer.LearningRate);
                epochLoss += stepLoss;
                epochSamples += stepSamples;
                progress?.Report(new TrainingProgress(epoch, epochs, stepInEpoch, stepsPerEpoch, globalStep, reported,
                    epochLoss / epochSamples, epochSamples / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), Optimizer.LearningRate));
                if (globalStep % Args.LoggingSteps == 0) run.Log(globalStep, epoch);
                run.MaybeEvaluateAndSave(task, globalStep, epoch, Args.EvalStrategy == IntervalStrategy.Steps && globalStep % Args.EvalSteps == 0,
                    Args.SaveStrategy == IntervalStrategy.Steps && globalStep % Args.SaveSteps == 0);
            }
            run.MaybeEvaluateAndSave(task, globalStep, epoch, Args.EvalStrategy == IntervalStrategy.Epoch, Args.SaveStrategy == IntervalStrategy.Epoch);
        }
        return run.Finish(globalStep, epoch);
    }

    /// <summary>
    /// <c>torch.nn.utils.clip_grad_norm_</c>: when the L2 norm of all gradients together exceeds <paramref name="maxNorm"/>,
    /// scales every gradient by <c>maxNorm / (norm + 1e-6)</c>. Returns the norm before clipping.
    /// </summary>
    public static double ClipGradNorm(IEnumerable<Parameter> parameters, double maxNorm)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        double sum = 0;
        foreach (Parameter p in parameters)
            if (p.RequiresGrad && p.HasGrad)
            {
                double n = TensorPrimitives.Norm<float>(p.Grad);
                sum += n * n;
            }
        double norm = Math.Sqrt(sum);
        double coefficient = maxNorm / (norm + 1e-6);
        if (coefficient < 1)
            foreach (Parameter p in parameters)
                if (p.RequiresGrad && p.HasGrad) TensorPrimitives.Multiply(p.Grad, (float)coefficient, p.Grad);
        return norm;
    }

    /// <summary>The bookkeeping of one <see cref="Train{TBatch}"/> call: logs, evaluations, checkpoints, the best.</summary>
    private sealed class Run(Trainer trainer, int epochs)
    {
        private readonly TrainingArguments _args = trainer.Args;
        private readonly List<float> _losses = [];
        private readonly List<double> _rates = [];
        private readonly List<EvalRecord> _evals = [];
        private readonly List<LogRecord> _logs = [];
        private readonly List<(int Step, string Path)> _checkpoints = [];
        private int _lastSavedStep = -1, _lastEvalStep = -1, _loggedUpTo;
        private double? _best;
        private int? _bestStep;
        private string? _bestCheckpoint;

        public void Learn(float loss, double rate)
        {
            _losses.Add(loss);
            _rates.Add(rate);
        }

        public void Log(int step, int epoch)
        {
            double mean = _losses.Skip(_loggedUpTo).Average(l => (double)l);
            _logs.Add(new LogRecord(step, epoch, mean, _rates[^1]));
            _loggedUpTo = _losses.Count;
        }

        public void MaybeEvaluateAndSave<TBatch>(ITrainingTask<TBatch> task, int step, int epoch, bool evaluate, bool save)
        {
            if (evaluate && step != _lastEvalStep)
            {
                _lastEvalStep = step;
                var metrics = task.Evaluate(trainer.Model, _args.PerDeviceEvalBatchSize);
                _evals.Add(new EvalRecord(step, epoch, metrics));
                if (metrics.TryGetValue(_args.MetricForBestModel, out double value))
                {
                    bool better = _best is not double best || (_args.MetricGreaterIsBetter ? value > best : value < best);
                    if (better) { _best = value; _bestStep = step; _bestCheckpoint = null; }
                }
                else if (_args.LoadBestModelAtEnd)
                    throw new KeyNotFoundException($"Trainer: metric_for_best_model '{_args.MetricForBestModel}' is not among the evaluation's metrics [{string.Join(", ", metrics.Keys)}].");
            }
            if (save && step != _lastSavedStep && step > 0)
            {
                _lastSavedStep = step;
                string path = Path.GetFullPath(Path.Combine(_args.OutputDir!, TrainerCheckpoint.DirectoryName(step)));
                TrainerCheckpoint.Save(trainer.Model, path);
                if (_bestStep == step) _bestCheckpoint = path;
                TrainerCheckpoint.WriteState(path, step, epoch, _best, _bestCheckpoint, _evals);
                _checkpoints.Add((step, path));
                Rotate();
            }
        }

        // HF's _rotate_checkpoints: delete the oldest beyond save_total_limit, never the latest, and never the best
        // when it is to be restored at the end.
        private void Rotate()
        {
            if (_args.SaveTotalLimit is not int limit) return;
            while (_checkpoints.Count > limit)
            {
                int victim = _checkpoints.FindIndex(c => c.Path != _checkpoints[^1].Path && !(_args.LoadBestModelAtEnd && c.Path == _bestCheckpoint));
                if (victim < 0) return;
                Directory.Delete(_checkpoints[victim].Path, recursive: true);
                _checkpoints.RemoveAt(victim);
            }
        }

        public TrainerResult Finish(int step, int epoch)
        {
            bool restored = false;
            if (_args.LoadBestModelAtEnd && _bestCheckpoint is not null)
            {
                TrainerCheckpoint.Load(trainer.Model, _bestCheckpoint);
                restored = true;
            }
            return new TrainerResult
            {
                GlobalStep = step, Epochs = Math.Min(epoch, epochs), StepLosses = _losses, LearningRates = _rates,
                EvalHistory = _evals, LogHistory = _logs, Checkpoints = _checkpoints.Select(c => c.Path).ToList(),
                BestCheckpoint = _bestCheckpoint, BestMetric = _best, BestStep = _bestStep, RestoredBest = restored,
            };
        }
    }
}
