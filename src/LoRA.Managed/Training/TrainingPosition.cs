using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoRA.Managed.IO;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Training;

/// <summary>
/// Where a run stands between two optimiser steps: everything beyond the weights and the optimiser that
/// <see cref="Trainer"/> needs to continue a run as if it had never stopped. Written into a checkpoint's
/// <c>trainer_state.json</c> (under <c>"resume"</c>, beside HF's fields) and <c>rng_state.json</c>.
/// </summary>
/// <remarks>
/// The batch order is not stored but regenerated: <see cref="EpochStartRng"/> is the order generator's state before the
/// epoch drew its shuffle, so replaying the draw and skipping <see cref="BatchIndex"/> batches gives the same remaining
/// batches; <see cref="CurrentRng"/> then restores any draws made since (e.g. dropout sharing the generator).
/// Floats are written in .NET's shortest round-trip form, so the losses read back bit for bit.
/// </remarks>
public sealed record TrainingPosition
{
    /// <summary>The name of the generator file in a checkpoint (HF's <c>rng_state.pth</c>).</summary>
    public const string RngFileName = "rng_state.json";

    /// <summary>Optimiser steps taken.</summary>
    public required int GlobalStep { get; init; }
    /// <summary>The current epoch, 1-based.</summary>
    public required int Epoch { get; init; }
    /// <summary>Steps taken in the current epoch.</summary>
    public required int StepInEpoch { get; init; }
    /// <summary>Micro-batches of the current epoch consumed.</summary>
    public required int BatchIndex { get; init; }
    /// <summary>Sample-weighted loss sum of the current epoch so far (for the progress reports' epoch mean).</summary>
    public required double EpochLossSum { get; init; }
    /// <summary>Samples of the current epoch so far.</summary>
    public required int EpochSamples { get; init; }
    /// <summary>The run's shape, checked on resume: samples per micro-batch.</summary>
    public required int BatchSize { get; init; }
    /// <summary>The run's shape: micro-batches per step.</summary>
    public required int GradientAccumulationSteps { get; init; }
    /// <summary>The run's shape: micro-batches per epoch.</summary>
    public required int BatchesPerEpoch { get; init; }
    /// <summary>The run's shape: optimiser steps in the whole run (fixes the schedule).</summary>
    public required int TotalSteps { get; init; }
    /// <summary>Every step's loss so far.</summary>
    public required IReadOnlyList<float> StepLosses { get; init; }
    /// <summary>Every step's learning rate so far.</summary>
    public required IReadOnlyList<double> LearningRates { get; init; }
    /// <summary>The training log lines so far.</summary>
    public required IReadOnlyList<LogRecord> LogHistory { get; init; }
    /// <summary>Steps already folded into a log line.</summary>
    public required int LoggedUpTo { get; init; }
    /// <summary>The step of the last evaluation, or -1.</summary>
    public required int LastEvalStep { get; init; }
    /// <summary>The step of the best metric, or null.</summary>
    public int? BestStep { get; init; }
    /// <summary>The order generator's state when the current epoch began (before its shuffle), or null when the task has none.</summary>
    public GeneratorState? EpochStartRng { get; init; }
    /// <summary>The order generator's state at the checkpoint, or null.</summary>
    public GeneratorState? CurrentRng { get; init; }

    /// <summary>Throws unless this position belongs to a run of the given shape.</summary>
    /// <exception cref="ArgumentException">The message names the checkpoint and the field that differs.</exception>
    public void RequireSameRun(string checkpoint, int batchSize, int accumulation, int batchesPerEpoch, int totalSteps)
    {
        void Check(string field, int saved, int now)
        {
            if (saved != now)
                throw new ArgumentException($"Trainer: cannot resume from {checkpoint}: it was written by a run with {field} {saved} but this run has {now}; resume with the same arguments and data.");
        }
        Check("per_device_train_batch_size", BatchSize, batchSize);
        Check("gradient_accumulation_steps", GradientAccumulationSteps, accumulation);
        Check("batches per epoch", BatchesPerEpoch, batchesPerEpoch);
        Check("total steps", TotalSteps, totalSteps);
    }

    /// <summary>The <c>"resume"</c> object of <c>trainer_state.json</c>.</summary>
    internal JsonObject ToJson() => new()
    {
        ["epoch"] = Epoch, ["step_in_epoch"] = StepInEpoch, ["batch_index"] = BatchIndex,
        ["epoch_loss_sum"] = EpochLossSum, ["epoch_samples"] = EpochSamples,
        ["per_device_train_batch_size"] = BatchSize, ["gradient_accumulation_steps"] = GradientAccumulationSteps,
        ["batches_per_epoch"] = BatchesPerEpoch, ["total_steps"] = TotalSteps,
        ["logged_up_to"] = LoggedUpTo, ["last_eval_step"] = LastEvalStep, ["best_step"] = BestStep,
        ["step_losses"] = new JsonArray(StepLosses.Select(l => (JsonNode?)JsonValue.Create(l)).ToArray()),
        ["learning_rates"] = new JsonArray(LearningRates.Select(r => (JsonNode?)JsonValue.Create(r)).ToArray()),
        ["train_log"] = new JsonArray(LogHistory.Select(l => (JsonNode?)new JsonObject
        {
            ["step"] = l.Step, ["epoch"] = l.Epoch, ["loss"] = l.Loss, ["learning_rate"] = l.LearningRate,
        }).ToArray()),
    };

    /// <summary>The bytes of <c>rng_state.json</c>.</summary>
    internal byte[] RngJson()
    {
        static JsonNode? State(GeneratorState? s) => s is null ? null : new JsonObject
        {
            ["seed"] = s.Seed, ["index"] = s.Index, ["mt"] = new JsonArray(s.Mt.Select(w => (JsonNode?)JsonValue.Create(w)).ToArray()),
        };
        var json = new JsonObject { ["epoch_start"] = State(EpochStartRng), ["current"] = State(CurrentRng) };
        return JsonSerializer.SerializeToUtf8Bytes(json, JsonNodeContext.Default.JsonObject);
    }

    /// <summary>Reads a position back from a checkpoint folder.</summary>
    /// <exception cref="InvalidDataFormatException">A file is missing a field or holds a wrong value (named).</exception>
    /// <exception cref="DirectoryNotFoundException">There is no such folder.</exception>
    public static TrainingPosition Load(string directory) => LoadWithState(directory).Position;

    /// <summary>
    /// Reads a position back from a checkpoint folder and hands back the parsed <c>trainer_state.json</c> with it, so a
    /// caller that also needs HF's fields (<see cref="TrainerCheckpoint"/>) does not read and parse the file again.
    /// </summary>
    /// <exception cref="InvalidDataFormatException">A file is missing a field or holds a wrong value (named).</exception>
    /// <exception cref="DirectoryNotFoundException">There is no such folder.</exception>
    internal static (TrainingPosition Position, JsonObject State) LoadWithState(string directory)
    {
        RequireDirectory(directory);
        string statePath = Path.Combine(directory, TrainerCheckpoint.StateFileName);
        string rngPath = Path.Combine(directory, RngFileName);
        JsonObject state = ReadObject(statePath);
        if (state["resume"] is not JsonObject r)
            throw new InvalidDataFormatException(statePath, "resume", "missing: the checkpoint holds weights only and cannot be resumed from.");
        JsonObject rng = ReadObject(rngPath);
        try
        {
            var position = new TrainingPosition
            {
                GlobalStep = Int(state, "global_step"), Epoch = Int(r, "epoch"), StepInEpoch = Int(r, "step_in_epoch"),
                BatchIndex = Int(r, "batch_index"), EpochLossSum = r["epoch_loss_sum"]!.GetValue<double>(),
                EpochSamples = Int(r, "epoch_samples"), BatchSize = Int(r, "per_device_train_batch_size"),
                GradientAccumulationSteps = Int(r, "gradient_accumulation_steps"), BatchesPerEpoch = Int(r, "batches_per_epoch"),
                TotalSteps = Int(r, "total_steps"), LoggedUpTo = Int(r, "logged_up_to"), LastEvalStep = Int(r, "last_eval_step"),
                BestStep = r["best_step"]?.GetValue<int>(),
                StepLosses = r["step_losses"]!.AsArray().Select(n => n!.GetValue<float>()).ToList(),
                LearningRates = r["learning_rates"]!.AsArray().Select(n => n!.GetValue<double>()).ToList(),
                LogHistory = r["train_log"]!.AsArray().Select(n => new LogRecord(Int(n!.AsObject(), "step"), Int(n.AsObject(), "epoch"),
                    n["loss"]!.GetValue<double>(), n["learning_rate"]!.GetValue<double>())).ToList(),
                EpochStartRng = Rng(rng["epoch_start"]), CurrentRng = Rng(rng["current"]),
            };
            return (position, state);
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException or ArgumentException)
        {
            throw new InvalidDataFormatException(statePath, "resume", $"a field is missing or of the wrong type ({e.Message}).", e);
        }
    }

    /// <summary>The one check (and message) for a checkpoint folder that is not there.</summary>
    /// <exception cref="DirectoryNotFoundException">There is no such folder.</exception>
    internal static void RequireDirectory(string directory)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"Trainer: no checkpoint folder {Path.GetFullPath(directory)} to resume from.");
    }

    internal static JsonObject ReadObject(string path)
    {
        if (!File.Exists(path)) throw new InvalidDataFormatException(path, "(file)", "missing: not a checkpoint the trainer wrote, so it cannot be resumed from.");
        byte[] bytes;
        using (var file = InputFile.OpenRead(path))
        {
            bytes = new byte[file.Length];
            file.ReadExactly(bytes);
        }
        using JsonDocument doc = StrictJson.Parse(bytes, path, "(root)", 16);
        return JsonObject.Create(doc.RootElement.Clone()) ?? throw new InvalidDataFormatException(path, "(root)", "not a JSON object.");
    }

    private static int Int(JsonObject o, string key) =>
        o[key]?.GetValue<int>() ?? throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"'{key}' is missing"));

    private static GeneratorState? Rng(JsonNode? node)
    {
        if (node is null) return null;
        var o = node.AsObject();
        uint[] mt = o["mt"]!.AsArray().Select(n => n!.GetValue<uint>()).ToArray();
        return new GeneratorState(mt, Int(o, "index"), o["seed"]!.GetValue<ulong>());
    }
}
