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
    /// <summary>The order generator's state when the current epoch began (before its shuffle), or null when the task
    /// has none.</summary>
    public GeneratorState? EpochStartRng { get; init; }
    /// <summary>The order generator's state at the checkpoint, or null.</summary>
    public GeneratorState? CurrentRng { get; init; }

    /// <summary>
    /// The states of the model's own generators other than the order generator (<see cref="Nn.Module.Generators"/>,
    /// e.g. a LoRA dropout created with a generator of its own), in the model's order; empty when it has none.
    /// </summary>
    public IReadOnlyList<GeneratorState> ModelRng { get; init; } = [];

    /// <summary>The run's learning rate (<see cref="TrainingArguments.LearningRate"/>), checked on resume; null in
    /// older checkpoints.</summary>
    public double? LearningRate { get; init; }
    /// <summary>The optimiser's type name (Adam, AdamW, Sgd), checked on resume; null in older checkpoints.</summary>
    public string? OptimizerName { get; init; }
    /// <summary>The run's <see cref="TrainingArguments.RunTags"/>, checked on resume.</summary>
    public IReadOnlyDictionary<string, string> RunTags { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Throws unless the run resuming this position has its settings: the learning rate, the optimiser, the order
    /// generator's seed and every run tag. A different value would silently change the run, since the checkpoint's
    /// state (moments, generator) wins over what the new run was built with.
    /// </summary>
    /// <exception cref="ArgumentException">The message names the checkpoint, the setting, and both values.</exception>
    public void RequireSameSettings(string checkpoint, double learningRate, string optimizer, ulong? seed,
        IReadOnlyDictionary<string, string> tags)
    {
        ArgumentNullException.ThrowIfNull(tags);
        void Check(string field, string? saved, string? now)
        {
            if (saved is not null && now is not null && saved != now)
                throw new ArgumentException($"Trainer: cannot resume from {checkpoint}: it was written by a run with " +
                    $"{field} {saved} but this run has {now}; resume with the same arguments and data.");
        }
        Check("learning_rate", LearningRate?.ToString("R", CultureInfo.InvariantCulture),
            learningRate.ToString("R", CultureInfo.InvariantCulture));
        Check("optimizer", OptimizerName, optimizer);
        Check("seed", EpochStartRng?.Seed.ToString(CultureInfo.InvariantCulture),
            seed?.ToString(CultureInfo.InvariantCulture));
        foreach (string key in RunTags.Keys.Union(tags.Keys).Order(StringComparer.Ordinal))
            Check(key, RunTags.GetValueOrDefault(key) ?? "(unset)", tags.GetValueOrDefault(key) ?? "(unset)");
    }

    /// <summary>Throws unless this position belongs to a run of the given shape.</summary>
    /// <exception cref="ArgumentException">The message names the checkpoint and the field that differs.</exception>
    public void RequireSameRun(string checkpoint, int batchSize, int accumulation, int batchesPerEpoch, int totalSteps)
    {
        void Check(string field, int saved, int now)
        {
            if (saved != now)
                throw new ArgumentException($"Trainer: cannot resume from {checkpoint}: it was written by a run with " +
                    $"{field} {saved} but this run has {now}; resume with the same arguments and data.");
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
        ["learning_rate"] = LearningRate, ["optimizer"] = OptimizerName,
        ["run_tags"] = new JsonObject(RunTags.OrderBy(t => t.Key, StringComparer.Ordinal)
            .Select(t => KeyValuePair.Create(t.Key, (JsonNode?)JsonValue.Create(t.Value)))),
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
            ["seed"] = s.Seed, ["index"] = s.Index,
            ["mt"] = new JsonArray(s.Mt.Select(w => (JsonNode?)JsonValue.Create(w)).ToArray()),
        };
        var json = new JsonObject
        {
            ["epoch_start"] = State(EpochStartRng), ["current"] = State(CurrentRng),
            ["model"] = new JsonArray(ModelRng.Select(State).ToArray()),
        };
        return JsonSerializer.SerializeToUtf8Bytes(json, JsonNodeContext.Default.JsonObject);
    }

    /// <summary>Reads a position back from a checkpoint folder.</summary>
    /// <exception cref="InvalidDataFormatException">A file is missing a field or holds a wrong value
    /// (named).</exception>
    /// <exception cref="DirectoryNotFoundException">There is no such folder.</exception>
    public static TrainingPosition Load(string directory) => LoadWithState(directory).Position;

    /// <summary>
    /// Reads a position back from a checkpoint folder and hands back the parsed <c>trainer_state.json</c> with it, so a
    /// caller that also needs HF's fields (<see cref="TrainerCheckpoint"/>) does not read and parse the file again.
    /// </summary>
    /// <exception cref="InvalidDataFormatException">A file is missing a field or holds a wrong value
    /// (named).</exception>
    /// <exception cref="DirectoryNotFoundException">There is no such folder.</exception>
    internal static (TrainingPosition Position, JsonObject State) LoadWithState(string directory)
    {
        RequireDirectory(directory);
        string statePath = Path.Combine(directory, TrainerCheckpoint.StateFileName);
        string rngPath = Path.Combine(directory, RngFileName);
        return Parse(ReadBytes(statePath), statePath, ReadBytes(rngPath), rngPath);
    }

    /// <summary>
    /// Parses the bytes of <c>trainer_state.json</c> and <c>rng_state.json</c>; the sources name them in errors. Every
    /// field is checked for type and range, and against the others (one loss and one rate per step taken, counters
    /// within the run, a generator state of 624 words), so a resume never meets a value it cannot use.
    /// </summary>
    /// <exception cref="InvalidDataFormatException">A file is not a JSON object, or a field is missing, of the wrong
    /// type or out of range (named).</exception>
    internal static (TrainingPosition Position, JsonObject State) Parse(byte[] stateJson, string stateSource,
        byte[] rngJson, string rngSource)
    {
        JsonObject state = ParseObject(stateJson, stateSource);
        var (epochStart, current, model) = ParseRng(rngJson, rngSource);
        TrainingPosition position;
        try
        {
            if (state["resume"] is not JsonObject r)
                throw new InvalidDataFormatException(stateSource, "resume",
                    "missing: the checkpoint holds weights only and cannot be resumed from.");
            position = new TrainingPosition
            {
                GlobalStep = Int(state, "global_step"), Epoch = Int(r, "epoch"), StepInEpoch = Int(r, "step_in_epoch"),
                BatchIndex = Int(r, "batch_index"), EpochLossSum = r["epoch_loss_sum"]!.GetValue<double>(),
                EpochSamples = Int(r, "epoch_samples"), BatchSize = Int(r, "per_device_train_batch_size"),
                GradientAccumulationSteps = Int(r, "gradient_accumulation_steps"),
                BatchesPerEpoch = Int(r, "batches_per_epoch"),
                TotalSteps = Int(r, "total_steps"), LoggedUpTo = Int(r, "logged_up_to"),
                LastEvalStep = Int(r, "last_eval_step"),
                BestStep = r["best_step"]?.GetValue<int>(),
                StepLosses = r["step_losses"]!.AsArray().Select(n => n!.GetValue<float>()).ToList(),
                LearningRates = r["learning_rates"]!.AsArray().Select(n => n!.GetValue<double>()).ToList(),
                LogHistory = r["train_log"]!.AsArray()
                    .Select(n => new LogRecord(Int(n!.AsObject(), "step"), Int(n.AsObject(), "epoch"),
                    n["loss"]!.GetValue<double>(), n["learning_rate"]!.GetValue<double>())).ToList(),
                LearningRate = r["learning_rate"]?.GetValue<double>(),
                OptimizerName = r["optimizer"]?.GetValue<string>(),
                RunTags = r["run_tags"] is JsonObject t
                    ? t.ToDictionary(p => p.Key, p => p.Value!.GetValue<string>(), StringComparer.Ordinal)
                    : new Dictionary<string, string>(),
            };
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException
                                   or ArgumentException or KeyNotFoundException)
        {
            throw new InvalidDataFormatException(stateSource, "resume",
                $"a field is missing or of the wrong type ({e.Message}).", e);
        }
        position.Validate(stateSource);
        return (position with { EpochStartRng = epochStart, CurrentRng = current, ModelRng = model }, state);
    }

    /// <summary>The ranges and cross-checks of <see cref="Parse"/>.</summary>
    private void Validate(string source)
    {
        void Require(bool ok, string field, string problem)
        {
            if (!ok) throw new InvalidDataFormatException(source, field, problem);
        }
        Require(GlobalStep >= 0, "global_step", $"{GlobalStep} is negative.");
        Require(Epoch >= 1, "resume.epoch", $"{Epoch} is not an epoch (they count from 1).");
        Require(BatchSize >= 1, "resume.per_device_train_batch_size", $"{BatchSize} is not at least 1.");
        Require(GradientAccumulationSteps >= 1, "resume.gradient_accumulation_steps",
            $"{GradientAccumulationSteps} is not at least 1.");
        Require(BatchesPerEpoch >= 1, "resume.batches_per_epoch", $"{BatchesPerEpoch} is not at least 1.");
        Require(TotalSteps >= GlobalStep, "resume.total_steps",
            $"{TotalSteps} is fewer than the {GlobalStep} steps taken.");
        Require(StepInEpoch >= 0 && StepInEpoch <= GlobalStep, "resume.step_in_epoch",
            $"{StepInEpoch} is not in 0..{GlobalStep}.");
        Require(BatchIndex >= 0 && BatchIndex <= BatchesPerEpoch, "resume.batch_index",
            $"{BatchIndex} is not in 0..{BatchesPerEpoch}.");
        Require(EpochSamples >= 0, "resume.epoch_samples", $"{EpochSamples} is negative.");
        Require(StepLosses.Count == GlobalStep, "resume.step_losses",
            $"{StepLosses.Count} losses for {GlobalStep} steps.");
        Require(LearningRates.Count == GlobalStep, "resume.learning_rates",
            $"{LearningRates.Count} rates for {GlobalStep} steps.");
        Require(LoggedUpTo >= 0 && LoggedUpTo <= GlobalStep, "resume.logged_up_to",
            $"{LoggedUpTo} is not in 0..{GlobalStep}.");
        Require(LastEvalStep >= -1 && LastEvalStep <= GlobalStep, "resume.last_eval_step",
            $"{LastEvalStep} is not in -1..{GlobalStep}.");
        Require(BestStep is null || (BestStep >= 0 && BestStep <= GlobalStep), "resume.best_step",
            $"{BestStep} is not in 0..{GlobalStep}.");
        Require(LearningRate is null || (double.IsFinite(LearningRate.Value) && LearningRate > 0),
            "resume.learning_rate", $"{LearningRate} is not a finite rate > 0.");
    }

    private static byte[] ReadBytes(string path)
    {
        if (!File.Exists(path))
            throw new InvalidDataFormatException(path, "(file)",
                "missing: not a checkpoint the trainer wrote, so it cannot be resumed from.");
        using var file = InputFile.OpenRead(path);
        if (file.Length > MaxFileBytes)
            throw new InvalidDataFormatException(path, "(file)",
                $"{file.Length:N0} bytes is more than the {MaxFileBytes:N0}-byte limit.");
        var bytes = new byte[file.Length];
        file.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>The largest state file read: a million steps' losses and rates take about 40 MB.</summary>
    private const long MaxFileBytes = 256L << 20;

    /// <summary>Parses JSON bytes that must form an object; <paramref name="source"/> names them in errors.</summary>
    /// <exception cref="InvalidDataFormatException">Not UTF-8 JSON, too deep, or not an object.</exception>
    internal static JsonObject ParseObject(byte[] bytes, string source)
    {
        using JsonDocument doc = StrictJson.Parse(bytes, source, "(root)", 16);
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new InvalidDataFormatException(source, "(root)",
                $"expected a JSON object, found {doc.RootElement.ValueKind}.");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in doc.RootElement.EnumerateObject())
            if (!seen.Add(p.Name))
                throw new InvalidDataFormatException(source, p.Name.Length == 0 ? "(empty key)" : p.Name,
                    "appears twice.");
        try
        {
            return JsonObject.Create(doc.RootElement.Clone())!;
        }
        catch (ArgumentException e)   // a duplicate key deeper down, which JsonObject refuses
        {
            throw new InvalidDataFormatException(source, "(root)", $"malformed ({e.Message}).", e);
        }
    }

    /// <summary>The one check (and message) for a checkpoint folder that is not there.</summary>
    /// <exception cref="DirectoryNotFoundException">There is no such folder.</exception>
    internal static void RequireDirectory(string directory)
    {
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException("Trainer: no checkpoint folder " +
                $"{Path.GetFullPath(directory)} to resume from.");
    }

    internal static JsonObject ReadObject(string path) => ParseObject(ReadBytes(path), path);

    private static int Int(JsonObject o, string key) =>
        o[key]?.GetValue<int>()
            ?? throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"'{key}' is missing"));

    /// <summary>
    /// The two generator states of <c>rng_state.json</c>, read from the document directly (2 × 624 words as JSON nodes
    /// would cost an object each), each checked as <see cref="TorchGenerator.SetState"/> will: 624 words, an index in
    /// 0..624.
    /// </summary>
    private static (GeneratorState? EpochStart, GeneratorState? Current,
        IReadOnlyList<GeneratorState> Model) ParseRng(byte[] json, string source)
    {
        using JsonDocument doc = StrictJson.Parse(json, source, "(root)", 16);
        JsonElement root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw new InvalidDataFormatException(source, "(root)", $"expected a JSON object, found {root.ValueKind}.");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in root.EnumerateObject())
            if (!seen.Add(p.Name))
                throw new InvalidDataFormatException(source, p.Name.Length == 0 ? "(empty key)" : p.Name,
                    "appears twice.");
        var model = new List<GeneratorState>();
        if (root.TryGetProperty("model", out JsonElement list)) // absent in checkpoints written before it existed
        {
            if (list.ValueKind != JsonValueKind.Array)
                throw new InvalidDataFormatException(source, "model", $"expected an array, found {list.ValueKind}.");
            int i = 0;
            foreach (JsonElement item in list.EnumerateArray())
                model.Add(State(item, $"model[{i++}]", source)
                    ?? throw new InvalidDataFormatException(source, $"model[{i - 1}]", "a generator state, not null."));
        }
        return (Rng(root, "epoch_start", source), Rng(root, "current", source), model);
    }

    private static GeneratorState? Rng(JsonElement root, string key, string source) =>
        root.TryGetProperty(key, out JsonElement o) ? State(o, key, source) : null;

    private static GeneratorState? State(JsonElement o, string key, string source)
    {
        if (o.ValueKind == JsonValueKind.Null) return null;
        if (o.ValueKind != JsonValueKind.Object)
            throw new InvalidDataFormatException(source, key, $"expected an object, found {o.ValueKind}.");
        if (!o.TryGetProperty("mt", out JsonElement mtEl) || mtEl.ValueKind != JsonValueKind.Array
            || mtEl.GetArrayLength() != 624)
            throw new InvalidDataFormatException(source, $"{key}.mt",
                "missing or not an array of the 624 words of a mt19937 state.");
        var mt = new uint[624];
        int i = 0;
        foreach (JsonElement w in mtEl.EnumerateArray())
        {
            if (w.ValueKind != JsonValueKind.Number || !w.TryGetUInt32(out mt[i]))
                throw new InvalidDataFormatException(source, $"{key}.mt",
                    $"word {i} is not an unsigned 32-bit integer.");
            i++;
        }
        if (!o.TryGetProperty("index", out JsonElement indexEl) || indexEl.ValueKind != JsonValueKind.Number
            || !indexEl.TryGetInt32(out int index) || index is < 0 or > 624)
            throw new InvalidDataFormatException(source, $"{key}.index", "missing or not an integer in 0..624.");
        if (!o.TryGetProperty("seed", out JsonElement seedEl) || seedEl.ValueKind != JsonValueKind.Number
            || !seedEl.TryGetUInt64(out ulong seed))
            throw new InvalidDataFormatException(source, $"{key}.seed", "missing or not an unsigned 64-bit integer.");
        return new GeneratorState(mt, index, seed);
    }
}
