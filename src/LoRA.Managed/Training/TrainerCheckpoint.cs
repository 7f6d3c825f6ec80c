using System.Text.Json;
using System.Text.Json.Nodes;
using LoRA.Managed.IO;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Training;

/// <summary>
/// The checkpoint folders <see cref="Trainer"/> writes, <c>checkpoint-{step}</c> as HF's: for a <see cref="PeftModel"/>
/// the active adapter in PEFT's layout (<see cref="PeftModel.SaveAdapter"/>); for any other model its trainable
/// parameters as <c>model.safetensors</c> under <c>state_dict</c> names. Both with <c>trainer_state.json</c>.
/// </summary>
public static class TrainerCheckpoint
{
    /// <summary>The weights file of a checkpoint of a plain (non-PEFT) model.</summary>
    public const string ModelFileName = "model.safetensors";

    /// <summary>The trainer state file (step, epoch, best metric and checkpoint, evaluations).</summary>
    public const string StateFileName = "trainer_state.json";

    /// <summary>The folder name of the checkpoint after <paramref name="step"/>.</summary>
    public static string DirectoryName(int step) => $"checkpoint-{step}";

    /// <summary>Writes <paramref name="model"/>'s trainable weights (see the class summary) into <paramref name="directory"/>.</summary>
    public static void Save(Module model, string directory)
    {
        ArgumentNullException.ThrowIfNull(model);
        Directory.CreateDirectory(directory);
        if (model is PeftModel peft)
        {
            peft.SaveAdapter(directory);
            return;
        }
        var tensors = model.NamedParameters().Where(p => p.Value.RequiresGrad).ToDictionary(p => p.Key, p => (Tensor)p.Value, StringComparer.Ordinal);
        SafeTensors.Write(Path.Combine(directory, ModelFileName), tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>Copies a checkpoint's weights back into <paramref name="model"/>; every name and shape is checked before anything changes.</summary>
    /// <exception cref="InvalidDataFormatException">The file is malformed or a tensor does not belong to the model (named).</exception>
    public static void Load(Module model, string directory)
    {
        ArgumentNullException.ThrowIfNull(model);
        var mine = model.StateDict();
        var targets = new List<(Tensor Target, Tensor Source)>();
        string path;
        if (model is PeftModel peft)
        {
            path = Path.Combine(directory, AdapterFiles.WeightsFileName);
            const string prefix = "base_model.model.";
            foreach (var (key, t) in SafeTensors.Read(path).Tensors)
            {
                // PEFT's file drops the adapter name: X.lora_A.weight is X.lora_A.<adapter>.weight in memory.
                string name = key.StartsWith(prefix, StringComparison.Ordinal) ? key[prefix.Length..] : key;
                foreach (string factor in new[] { ".lora_A.weight", ".lora_B.weight" })
                    if (name.EndsWith(factor, StringComparison.Ordinal))
                        name = name[..^".weight".Length] + "." + peft.ActiveAdapter + ".weight";
                targets.Add((Find(mine, name, t, path, key), t));
            }
        }
        else
        {
            path = Path.Combine(directory, ModelFileName);
            foreach (var (key, t) in SafeTensors.Read(path).Tensors) targets.Add((Find(mine, key, t, path, key), t));
        }
        foreach (var (target, source) in targets) source.Data.CopyTo(target.Data);
    }

    /// <summary>Writes <c>trainer_state.json</c> (HF's field names) atomically.</summary>
    internal static void WriteState(string directory, int step, int epoch, double? bestMetric, string? bestCheckpoint, IEnumerable<EvalRecord> evals)
    {
        var history = new JsonArray();
        foreach (var e in evals)
        {
            var entry = new JsonObject { ["step"] = e.Step, ["epoch"] = e.Epoch };
            foreach (var (k, v) in e.Metrics) entry[k] = v;
            history.Add(entry);
        }
        var state = new JsonObject
        {
            ["global_step"] = step, ["epoch"] = epoch, ["best_metric"] = bestMetric,
            ["best_model_checkpoint"] = bestCheckpoint, ["log_history"] = history,
        };
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(state, new JsonSerializerOptions { WriteIndented = true });
        AtomicFile.WriteAllBytes(Path.Combine(directory, StateFileName), bytes);
    }

    private static Tensor Find(Dictionary<string, Tensor> mine, string name, Tensor t, string path, string key)
    {
        if (!mine.TryGetValue(name, out var target))
            throw new InvalidDataFormatException(path, key, $"no parameter '{name}' in the model.");
        if (!target.Shape.AsSpan().SequenceEqual(t.Shape))
            throw new InvalidDataFormatException(path, key, $"shape {Shapes.Format(t.Shape)} in the file but {Shapes.Format(target.Shape)} in the model.");
        return target;
    }
}
