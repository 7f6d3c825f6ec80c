using System.Text.Json;
using System.Text.Json.Nodes;
using LoRA.Managed.IO;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Training;

/// <summary>
/// The checkpoint folders <see cref="Trainer"/> writes, <c>checkpoint-{step}</c> as HF's: the model's trainable weights
/// as the model serialises them (<see cref="Module.SerializeTrainable"/>: a PEFT model's active adapter in PEFT's
/// layout, any other model's trainable parameters as <c>model.safetensors</c> under <c>state_dict</c> names). A
/// checkpoint written during training also holds the optimiser (<see cref="OptimizerCheckpoint"/>),
/// <c>trainer_state.json</c> and <c>rng_state.json</c> (<see cref="TrainingPosition"/>), all replaced together, so the
/// run can be resumed from it exactly.
/// </summary>
/// <remarks>
/// The generator saved is the task's (<see cref="IResumableTask{TBatch}.OrderGenerator"/>). Resume is bit for bit
/// when every random draw of the run comes from it, as in the CLI (LoRA dropout draws from the generator the
/// adapter was created with: pass the task's). A <see cref="Nn.Dropout"/> module or adapter with a generator of its
/// own is not saved, so a run using one resumes with different masks.
/// </remarks>
public static class TrainerCheckpoint
{
    /// <summary>The weights file of a checkpoint of a plain (non-PEFT) model.</summary>
    public const string ModelFileName = Module.TrainableWeightsFileName;

    /// <summary>The trainer state file (step, epoch, best metric and checkpoint, evaluations).</summary>
    public const string StateFileName = "trainer_state.json";

    /// <summary>The folder name of the checkpoint after <paramref name="step"/>.</summary>
    public static string DirectoryName(int step) => $"checkpoint-{step}";

    /// <summary>Writes <paramref name="model"/>'s trainable weights (<see cref="Module.SerializeTrainable"/>) into
    /// <paramref name="directory"/>, all files replaced together.</summary>
    public static void Save(Module model, string directory)
    {
        ArgumentNullException.ThrowIfNull(model);
        Directory.CreateDirectory(directory);
        AtomicFile.WriteAll(model.SerializeTrainable()
            .Select(f => (Path.Combine(directory, f.FileName), (Action<Stream>)(s => s.Write(f.Bytes)))).ToList());
    }

    /// <summary>Copies a checkpoint's weights back into <paramref name="model"/> (<see cref="Module.LoadTrainable"/>);
    /// every name and shape is checked before anything changes.</summary>
    /// <exception cref="InvalidDataFormatException">The file is malformed or a tensor does not belong to the model
    /// (named).</exception>
    public static void Load(Module model, string directory)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.LoadTrainable(directory);
    }

    /// <summary>
    /// Writes a full training checkpoint into <paramref name="directory"/> as one <see cref="AtomicFile.WriteAll"/>
    /// update: the weights (as <see cref="Save"/>), <see cref="OptimizerCheckpoint.FileName"/>,
    /// <see cref="StateFileName"/> (HF's fields plus the <see cref="TrainingPosition"/>) and
    /// <see cref="TrainingPosition.RngFileName"/>.
    /// </summary>
    internal static void SaveFull(Module model, Optimizer optimizer, string directory, TrainingPosition position,
        double? bestMetric, string? bestCheckpoint, IEnumerable<EvalRecord> evals)
    {
        var files = new List<(string Path, Action<Stream> Write)>();
        var contents = new List<(string Name, byte[] Bytes)>();
        void Add(string name, byte[] bytes)
        {
            files.Add((Path.Combine(directory, name), s => s.Write(bytes)));
            contents.Add((name, bytes));
        }
        foreach (var (name, bytes) in model.SerializeTrainable()) Add(name, bytes);
        Add(OptimizerCheckpoint.FileName, OptimizerCheckpoint.Serialize(optimizer));
        JsonObject state = StateJson(position.GlobalStep, position.Epoch, bestMetric, bestCheckpoint, evals);
        state["resume"] = position.ToJson();
        Add(StateFileName, JsonSerializer.SerializeToUtf8Bytes(state, JsonNodeContext.Indented.JsonObject));
        Add(TrainingPosition.RngFileName, position.RngJson());
        // Renamed last: the folder is marked complete only once every file above is in place (CheckpointManifest).
        byte[] manifest = CheckpointManifest.Serialize(contents);
        files.Add((Path.Combine(directory, CheckpointManifest.FileName), s => s.Write(manifest)));
        AtomicFile.WriteAll(files);
    }

    /// <summary>
    /// Restores a full checkpoint written by <see cref="Trainer"/>: the weights into <paramref name="model"/>, the
    /// state into <paramref name="optimizer"/>; returns the run's position and its evaluation history.
    /// </summary>
    /// <exception cref="InvalidDataFormatException">A file is missing, malformed or does not fit the model or optimiser
    /// (named).</exception>
    /// <exception cref="DirectoryNotFoundException">There is no such folder.</exception>
    public static (TrainingPosition Position, IReadOnlyList<EvalRecord> Evals, double? BestMetric,
        string? BestCheckpoint) LoadFull(
        Module model, Optimizer optimizer, string directory)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        TrainingPosition.RequireDirectory(directory);
        // The optimiser file is checked before the position so a weights-only checkpoint is named as such first.
        string optimizerPath = RequireOptimizerFile(directory);
        CheckpointManifest.Require(directory);
        var (position, state) = TrainingPosition.LoadWithState(directory);
        return Restore(model, optimizer, directory, optimizerPath, position, state);
    }

    /// <summary>
    /// <see cref="LoadFull(Module, Optimizer, string)"/> for a caller that has already read the position and the parsed
    /// <c>trainer_state.json</c> (<see cref="TrainingPosition.LoadWithState"/>), so neither file is read again.
    /// </summary>
    /// <exception cref="InvalidDataFormatException">A file is missing, malformed or does not fit the model or optimiser
    /// (named).</exception>
    internal static (TrainingPosition Position, IReadOnlyList<EvalRecord> Evals, double? BestMetric,
        string? BestCheckpoint) LoadFull(
        Module model, Optimizer optimizer, string directory, TrainingPosition position, JsonObject state)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        string optimizerPath = RequireOptimizerFile(directory);
        CheckpointManifest.Require(directory);
        return Restore(model, optimizer, directory, optimizerPath, position, state);
    }

    /// <summary>Reads HF's fields from the parsed state, then copies the weights and the optimiser state in.</summary>
    private static (TrainingPosition Position, IReadOnlyList<EvalRecord> Evals, double? BestMetric,
        string? BestCheckpoint) Restore(
        Module model, Optimizer optimizer, string directory, string optimizerPath, TrainingPosition position,
        JsonObject state)
    {
        string statePath = Path.Combine(directory, StateFileName);
        var evals = new List<EvalRecord>();
        double? best;
        string? bestCheckpoint;
        try
        {
            foreach (JsonNode? node in state["log_history"]!.AsArray())
            {
                var o = node!.AsObject();
                var metrics = o.Where(kv => kv.Key is not ("step" or "epoch"))
                    .ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<double>(), StringComparer.Ordinal);
                evals.Add(new EvalRecord(o["step"]!.GetValue<int>(), o["epoch"]!.GetValue<int>(), metrics));
            }
            best = state["best_metric"]?.GetValue<double>();
            bestCheckpoint = state["best_model_checkpoint"]?.GetValue<string>();
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataFormatException(statePath, "log_history", $"malformed ({e.Message}).", e);
        }
        // Everything is read and checked before the model or optimiser changes (each loader checks before copying).
        Load(model, directory);
        OptimizerCheckpoint.Load(optimizer, optimizerPath);
        return (position, evals, best, bestCheckpoint);
    }

    private static string RequireOptimizerFile(string directory)
    {
        string optimizerPath = Path.Combine(directory, OptimizerCheckpoint.FileName);
        if (!File.Exists(optimizerPath))
            throw new InvalidDataFormatException(optimizerPath, "(file)",
                "missing: the checkpoint holds weights only and cannot be resumed from.");
        return optimizerPath;
    }

    /// <summary>HF's <c>trainer_state.json</c> fields.</summary>
    private static JsonObject StateJson(int step, int epoch, double? bestMetric, string? bestCheckpoint,
        IEnumerable<EvalRecord> evals)
    {
        var history = new JsonArray();
        foreach (var e in evals)
        {
            var entry = new JsonObject { ["step"] = e.Step, ["epoch"] = e.Epoch };
            foreach (var (k, v) in e.Metrics) entry[k] = v;
            history.Add((JsonNode)entry);   // the non-generic Add: Add<T> is not trim-safe
        }
        return new JsonObject
        {
            ["global_step"] = step, ["epoch"] = epoch, ["best_metric"] = bestMetric,
            ["best_model_checkpoint"] = bestCheckpoint, ["log_history"] = history,
        };
    }
}
