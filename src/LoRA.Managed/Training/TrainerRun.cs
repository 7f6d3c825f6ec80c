using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Training;

public sealed partial class Trainer
{
    /// <summary>The shape of a run, which a checkpoint must share to be resumed by it.</summary>
    private readonly record struct RunShape(int BatchSize, int Accumulation, int BatchesPerEpoch, int TotalSteps);

    /// <summary>The loop's position, kept where a checkpoint can read it.</summary>
    private sealed class Cursor
    {
        public int GlobalStep, Epoch, StepInEpoch, BatchIndex, EpochSamples;
        public double EpochLoss;
        public GeneratorState? EpochStartRng;
    }

    /// <summary>The bookkeeping of one <see cref="Train{TBatch}"/> call: logs, evaluations, checkpoints, the
    /// best.</summary>
    private sealed class Run(Trainer trainer, int epochs, RunShape shape, TorchGenerator? generator)
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

        public Cursor Cursor { get; } = new();

        public TorchGenerator? Generator => generator;

        /// <summary>Every step's loss so far, resumed steps included: the one list of them.</summary>
        public IReadOnlyList<float> Losses => _losses;

        /// <summary>Loads a checkpoint into the model, optimiser and this bookkeeping; returns where to
        /// continue.</summary>
        public TrainingPosition Resume(string directory)
        {
            // A folder of checkpoints stands for its newest complete one.
            directory = CheckpointManifest.Resolve(directory);
            // Check the run's shape and settings before anything changes: the position file alone says them.
            var (saved, state) = TrainingPosition.LoadWithState(directory);
            saved.RequireSameRun(directory, shape.BatchSize, shape.Accumulation, shape.BatchesPerEpoch,
                shape.TotalSteps);
            saved.RequireSameSettings(directory, _args.LearningRate, trainer.Optimizer.GetType().Name, generator?.Seed,
                _args.RunTags);
            if (saved.EpochStartRng is not null && generator is null)
                throw new ArgumentException($"Trainer: cannot resume from {directory}: it was written by a run that " +
                    "shuffled, but this task has no order generator.");
            var (position, evals, best, bestCheckpoint) = TrainerCheckpoint.LoadFull(trainer.Model, trainer.Optimizer,
                directory, saved, state);
            _losses.AddRange(position.StepLosses);
            _rates.AddRange(position.LearningRates);
            _logs.AddRange(position.LogHistory);
            _evals.AddRange(evals);
            _loggedUpTo = position.LoggedUpTo;
            _lastEvalStep = position.LastEvalStep;
            // The resumed step counts as saved only when its checkpoint is in this run's output folder; resumed with
            // another folder, a cancellation before the next step must write the step there.
            string resumedIn = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)))!;
            if (_args.OutputDir is not null
                && Path.TrimEndingDirectorySeparator(Path.GetFullPath(_args.OutputDir)) == resumedIn)
                _lastSavedStep = position.GlobalStep;
            _best = best;
            _bestStep = position.BestStep;
            _bestCheckpoint = bestCheckpoint;
            // HF's rotation counts the checkpoints already in output_dir; those after the resumed step belong to the
            // abandoned continuation and are left alone.
            if (_args.OutputDir is not null && Directory.Exists(_args.OutputDir))
                foreach (var (step, dir) in CheckpointManifest.Checkpoints(_args.OutputDir))
                    if (step <= position.GlobalStep) _checkpoints.Add((step, dir));
            _checkpoints.Sort((a, b) => a.Step.CompareTo(b.Step));
            return position;
        }

        /// <summary>The model's own generators besides the order generator (whose state is kept on its own).</summary>
        public IEnumerable<TorchGenerator> ModelGenerators() =>
            trainer.Model.Generators().Where(g => !ReferenceEquals(g, generator));

        /// <summary>Puts the model's own generators back where the checkpoint had them.</summary>
        /// <exception cref="ArgumentException">The checkpoint holds another number of them (another model).</exception>
        public void RestoreModelGenerators(string directory, IReadOnlyList<GeneratorState> states)
        {
            var mine = ModelGenerators().ToList();
            if (mine.Count != states.Count)
                throw new ArgumentException($"Trainer: cannot resume from {directory}: it holds {states.Count} model " +
                    $"generator state(s) (e.g. LoRA dropout) but this model has {mine.Count}.");
            for (int i = 0; i < mine.Count; i++) mine[i].SetState(states[i]);
        }

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

        public string LastCheckpointNote() =>
            _checkpoints.Count == 0 ? "" : $" The last checkpoint, {_checkpoints[^1].Path}, is kept.";

        public void MaybeEvaluateAndSave<TBatch>(ITrainingTask<TBatch> task, bool evaluate, bool save)
        {
            int step = Cursor.GlobalStep, epoch = Cursor.Epoch;
            if (evaluate && step != _lastEvalStep)
            {
                _lastEvalStep = step;
                var metrics = task.Evaluate(trainer.Model, _args.PerDeviceEvalBatchSize);
                _evals.Add(new EvalRecord(step, epoch, metrics));
                if (metrics.TryGetValue(_args.MetricForBestModel, out double value))
                {
                    bool better = _best is not double best
                        || (_args.MetricGreaterIsBetter ? value > best : value < best);
                    if (better) { _best = value; _bestStep = step; _bestCheckpoint = null; }
                }
                else if (_args.LoadBestModelAtEnd)
                    throw new KeyNotFoundException($"Trainer: metric_for_best_model '{_args.MetricForBestModel}' is " +
                        $"not among the evaluation's metrics [{string.Join(", ", metrics.Keys)}].");
            }
            if (save) Save();
        }

        /// <summary>
        /// On cancellation between steps: a checkpoint of the current step when
        /// <see cref="TrainingArguments.SaveOnCancel"/>. Returns the checkpoint that holds <paramref name="step"/>
        /// (written now or before), or null.
        /// </summary>
        public string? SaveOnCancel(int step)
        {
            if (_args.SaveOnCancel && step > 0) Save();
            return _checkpoints.Count > 0 && _checkpoints[^1].Step == step && Directory.Exists(_checkpoints[^1].Path)
                ? _checkpoints[^1].Path : null;
        }

        private void Save()
        {
            int step = Cursor.GlobalStep;
            if (step == _lastSavedStep || step == 0) return;
            RequireFiniteParameters(step);
            _lastSavedStep = step;
            string path = Path.GetFullPath(Path.Combine(_args.OutputDir!, TrainerCheckpoint.DirectoryName(step)));
            if (_bestStep == step) _bestCheckpoint = path;
            var position = new TrainingPosition
            {
                GlobalStep = step, Epoch = Cursor.Epoch, StepInEpoch = Cursor.StepInEpoch,
                BatchIndex = Cursor.BatchIndex,
                EpochLossSum = Cursor.EpochLoss, EpochSamples = Cursor.EpochSamples,
                BatchSize = shape.BatchSize, GradientAccumulationSteps = shape.Accumulation,
                BatchesPerEpoch = shape.BatchesPerEpoch, TotalSteps = shape.TotalSteps,
                StepLosses = _losses, LearningRates = _rates, LogHistory = _logs, // serialised right away: no copies
                LoggedUpTo = _loggedUpTo, LastEvalStep = _lastEvalStep, BestStep = _bestStep,
                EpochStartRng = Cursor.EpochStartRng, CurrentRng = generator?.GetState(),
                ModelRng = ModelGenerators().Select(g => g.GetState()).ToList(),
                LearningRate = _args.LearningRate, OptimizerName = trainer.Optimizer.GetType().Name,
                RunTags = _args.RunTags,
            };
            TrainerCheckpoint.SaveFull(trainer.Model, trainer.Optimizer, path, position, _best, _bestCheckpoint,
                _evals);
            _checkpoints.RemoveAll(c => c.Path == path);
            _checkpoints.Add((step, path));
            Rotate();
        }

        // A step can leave non-finite weights while its own loss was finite; such a checkpoint would not be a good one.
        private void RequireFiniteParameters(int step)
        {
            foreach (Parameter p in trainer.Optimizer.Parameters)
                foreach (float x in p.Data)
                    if (!float.IsFinite(x))
                        throw new ArithmeticException($"Training diverged: a parameter is {x} after global step " +
                            $"{step}; no checkpoint is written for it.{LastCheckpointNote()}");
        }

        // HF's _rotate_checkpoints: delete the oldest beyond save_total_limit, never the latest, and never the best
        // when it is to be restored at the end.
        private void Rotate()
        {
            if (_args.SaveTotalLimit is not int limit) return;
            while (_checkpoints.Count > limit)
            {
                int victim = _checkpoints.FindIndex(c => c.Path != _checkpoints[^1].Path
                    && !(_args.LoadBestModelAtEnd && c.Path == _bestCheckpoint));
                if (victim < 0) return;
                if (Directory.Exists(_checkpoints[victim].Path))
                    Directory.Delete(_checkpoints[victim].Path, recursive: true);
                _checkpoints.RemoveAt(victim);
            }
        }

        public TrainerResult Finish()
        {
            bool restored = false;
            if (_args.LoadBestModelAtEnd && _bestCheckpoint is not null)
            {
                TrainerCheckpoint.Load(trainer.Model, _bestCheckpoint);
                restored = true;
            }
            return new TrainerResult
            {
                GlobalStep = Cursor.GlobalStep, Epochs = Math.Min(Cursor.Epoch, epochs), StepLosses = _losses,
                LearningRates = _rates,
                EvalHistory = _evals, LogHistory = _logs, Checkpoints = _checkpoints.Select(c => c.Path).ToList(),
                BestCheckpoint = _bestCheckpoint, BestMetric = _best, BestStep = _bestStep, RestoredBest = restored,
            };
        }
    }
}
