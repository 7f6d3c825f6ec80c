using System.Globalization;
using LoRA.Managed.IO;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Training;

/// <summary>
/// An optimiser's state as a safetensors file (<c>optimizer.safetensors</c>, the counterpart of HF's
/// <c>optimizer.pt</c>): per parameter <c>state.{i}.exp_avg</c> and <c>state.{i}.exp_avg_sq</c> (Adam, AdamW) or
/// <c>state.{i}.momentum_buffer</c> (SGD, once it exists), named as in <c>torch.optim.Optimizer.state_dict()</c>; the
/// metadata holds the optimiser's type, its step count (which also fixes the schedule's position) and the parameters'
/// element counts.
/// </summary>
/// <remarks>
/// Parameters are identified by their position in <see cref="Optimizer.Parameters"/>, as PyTorch does, so the model and
/// optimiser must be built the same way as when the file was written; every count and size is checked before anything
/// changes.
/// </remarks>
public static class OptimizerCheckpoint
{
    /// <summary>The file name inside a checkpoint folder.</summary>
    public const string FileName = "optimizer.safetensors";

    /// <summary>The state of <paramref name="optimizer"/> as safetensors bytes.</summary>
    /// <exception cref="NotSupportedException">The optimiser is neither Adam/AdamW nor SGD.</exception>
    public static byte[] Serialize(Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        switch (optimizer)
        {
            case Adam adam:
                for (int i = 0; i < adam.Parameters.Count; i++)
                {
                    tensors[$"state.{i}.exp_avg"] = new Tensor(adam.FirstMoments[i], adam.FirstMoments[i].Length);
                    tensors[$"state.{i}.exp_avg_sq"] = new Tensor(adam.SecondMoments[i], adam.SecondMoments[i].Length);
                }
                break;
            case Sgd sgd:
                for (int i = 0; i < sgd.Parameters.Count; i++)
                    if (sgd.MomentumBuffers[i] is { } b)
                        tensors[$"state.{i}.momentum_buffer"] = new Tensor(b, b.Length);
                break;
            default:
                throw new NotSupportedException("OptimizerCheckpoint: cannot save the state of " +
                    $"{optimizer.GetType().Name} (Adam, AdamW and Sgd are supported).");
        }
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "pt",
            ["optimizer"] = optimizer.GetType().Name,
            ["step"] = optimizer.StepCount.ToString(CultureInfo.InvariantCulture),
            ["param_sizes"] = string.Join(",",
                optimizer.Parameters.Select(p => p.Count.ToString(CultureInfo.InvariantCulture))),
        };
        return SafeTensors.Serialize(tensors, metadata);
    }

    /// <summary>Restores <paramref name="optimizer"/> from the file at <paramref name="path"/>; nothing changes unless
    /// all of it fits.</summary>
    /// <exception cref="InvalidDataFormatException">The file is malformed or was written by another optimiser or for
    /// other parameters (named).</exception>
    public static void Load(Optimizer optimizer, string path)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        SafeTensorsFile file = SafeTensors.Read(path);
        string Meta(string key) => file.Metadata.TryGetValue(key, out string? v) ? v
            : throw new InvalidDataFormatException(path, "__metadata__." + key, "missing.");
        string type = Meta("optimizer");
        if (type != optimizer.GetType().Name)
            throw new InvalidDataFormatException(path, "__metadata__.optimizer",
                $"written by {type} but the run uses {optimizer.GetType().Name}.");
        if (!int.TryParse(Meta("step"), NumberStyles.None, CultureInfo.InvariantCulture, out int step))
            throw new InvalidDataFormatException(path, "__metadata__.step", $"'{Meta("step")}' is not a step count.");
        string sizes = string.Join(",",
            optimizer.Parameters.Select(p => p.Count.ToString(CultureInfo.InvariantCulture)));
        if (Meta("param_sizes") != sizes)
            throw new InvalidDataFormatException(path, "__metadata__.param_sizes",
                $"the file's parameters have sizes [{Meta("param_sizes")}] but the optimiser's have [{sizes}].");

        string[] kinds = optimizer is Adam ? ["exp_avg", "exp_avg_sq"] : ["momentum_buffer"];
        var known = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < optimizer.Parameters.Count; i++)
            foreach (string kind in kinds) known.Add($"state.{i}.{kind}");
        foreach (string key in file.Tensors.Keys)
            if (!known.Contains(key))
                throw new InvalidDataFormatException(path, key,
                    $"not a state tensor of {type} over {optimizer.Parameters.Count} parameters.");

        float[]? Get(string key, int count, bool required)
        {
            if (!file.Tensors.TryGetValue(key, out Tensor? t))
                return required ? throw new InvalidDataFormatException(path, key, "missing.") : null;
            if (t.Count != count)
                throw new InvalidDataFormatException(path, key, $"{t.Count} values but the parameter has {count}.");
            return t.Data.ToArray();
        }

        switch (optimizer)
        {
            case Adam adam:
                var m = new float[adam.Parameters.Count][];
                var v = new float[adam.Parameters.Count][];
                for (int i = 0; i < m.Length; i++)
                {
                    m[i] = Get($"state.{i}.exp_avg", adam.Parameters[i].Count, true)!;
                    v[i] = Get($"state.{i}.exp_avg_sq", adam.Parameters[i].Count, true)!;
                }
                for (int i = 0; i < m.Length; i++)
                {
                    m[i].CopyTo(adam.FirstMoments[i], 0);
                    v[i].CopyTo(adam.SecondMoments[i], 0);
                }
                break;
            case Sgd sgd:
                var buffers = new float[]?[sgd.Parameters.Count];
                for (int i = 0; i < buffers.Length; i++)
                    buffers[i] = Get($"state.{i}.momentum_buffer", sgd.Parameters[i].Count, false);
                for (int i = 0; i < buffers.Length; i++) sgd.RestoreMomentumBuffer(i, buffers[i]);
                break;
            default:
                throw new NotSupportedException("OptimizerCheckpoint: cannot load the state of " +
                    $"{optimizer.GetType().Name} (Adam, AdamW and Sgd are supported).");
        }
        optimizer.RestoreStepCount(step);
    }
}
