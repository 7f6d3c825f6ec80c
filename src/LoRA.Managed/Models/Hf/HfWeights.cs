using System.Runtime.InteropServices;
using System.Text.Json;
using LoRA.Managed.IO;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Models.Hf;

/// <summary>
/// A model folder's weights: <c>model.safetensors</c>, or the shards listed by <c>model.safetensors.index.json</c>'s
/// <c>weight_map</c>, opened header-only (<see cref="SafeTensorsReader"/>).
/// <see cref="LoadInto(Module, string, Func{string, bool})"/> first matches every parameter of a module tree to a
/// stored tensor, accepting names with or without the base-model prefix as <c>from_pretrained</c> does
/// (<c>h.0.attn.c_attn.weight</c> for <c>transformer.h.0.attn.c_attn.weight</c>), and checks every shape; only then are
/// tensors read, one at a time, straight into the parameters.
/// </summary>
public sealed unsafe class HfWeights : IDisposable
{
    /// <summary>The single-file weights name.</summary>
    public const string SingleFile = "model.safetensors";

    /// <summary>The sharded weights index name.</summary>
    public const string IndexFile = "model.safetensors.index.json";

    private readonly List<SafeTensorsReader> _readers = new();
    private readonly Dictionary<string, SafeTensorsReader> _byName = new(StringComparer.Ordinal);

    private HfWeights() { }

    /// <summary>Opens the weights of <paramref name="directory"/>.</summary>
    /// <exception cref="InvalidDataFormatException">A file is malformed or the index names a tensor its shard
    /// lacks.</exception>
    /// <exception cref="FileNotFoundException">Neither weights file exists, or a shard is missing.</exception>
    public static HfWeights Open(string directory)
    {
        var w = new HfWeights();
        try
        {
            string single = Path.Combine(directory, SingleFile), index = Path.Combine(directory, IndexFile);
            if (File.Exists(single)) w.Add(SafeTensorsReader.Open(single));
            else if (File.Exists(index)) w.OpenShards(directory, index);
            else
                throw new FileNotFoundException(
                    $"{directory}: no {SingleFile} or {IndexFile} (pytorch_model.bin is not read; save the model " +
                    "with safe_serialization=True).", single);
            return w;
        }
        catch
        {
            w.Dispose();
            throw;
        }
    }

    /// <summary>The weight files read, in the order opened.</summary>
    internal IEnumerable<string> FilePaths => _readers.Select(r => r.Path);

    /// <summary>Every stored tensor name.</summary>
    public IEnumerable<string> Names => _byName.Keys;

    private void Add(SafeTensorsReader reader)
    {
        _readers.Add(reader);
        foreach (string name in reader.Names) _byName.TryAdd(name, reader);
    }

    private void OpenShards(string directory, string index)
    {
        var info = new FileInfo(index);
        if (info.Length > 16 << 20)
            throw new InvalidDataFormatException(index, "json", $"{info.Length:N0} bytes is too large for an index.");
        var shards = new Dictionary<string, SafeTensorsReader>(StringComparer.Ordinal);
        foreach (var (tensor, file) in ParseIndex(File.ReadAllBytes(index), index))
        {
            if (!shards.TryGetValue(file, out var reader))
            {
                reader = SafeTensorsReader.Open(Path.Combine(directory, file));
                shards[file] = reader;
                _readers.Add(reader);
            }
            if (!reader.Contains(tensor))
                throw new InvalidDataFormatException(index, $"weight_map.{tensor}",
                    $"the shard {file} has no such tensor.");
            _byName[tensor] = reader;
        }
    }

    /// <summary>
    /// The <c>weight_map</c> of a sharded index (tensor name → shard file name), every entry checked: an object of
    /// strings, each a plain file name in the folder. <paramref name="source"/> names the file in errors.
    /// </summary>
    /// <exception cref="InvalidDataFormatException">The JSON or an entry is malformed (named).</exception>
    internal static List<(string Tensor, string File)> ParseIndex(byte[] json, string source)
    {
        using JsonDocument doc = StrictJson.Parse(json, source, "json", 64);
        if (doc.RootElement.ValueKind != JsonValueKind.Object
            || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            throw new InvalidDataFormatException(source, "weight_map",
                "missing or not an object of tensor name → shard file.");
        var entries = new List<(string, string)>();
        foreach (var entry in map.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new InvalidDataFormatException(source, $"weight_map.{entry.Name}",
                    $"expected a file name, found {entry.Value.ValueKind}.");
            string file = entry.Value.GetString()!;
            if (file.Length == 0 || Path.GetFileName(file) != file || file is "." or "..")
                throw new InvalidDataFormatException(source, $"weight_map.{entry.Name}",
                    $"'{file}' is not a file name in the folder.");
            entries.Add((entry.Name, file));
        }
        return entries;
    }

    /// <summary>
    /// Fills every parameter of <paramref name="model"/> from the stored tensor of the same name, or of the same name
    /// without <paramref name="basePrefix"/>. Stored tensors no parameter takes are refused unless
    /// <paramref name="ignorable"/> says they are buffers Hugging Face also skips.
    /// </summary>
    /// <exception cref="InvalidDataFormatException">A tensor is missing, of another shape, or unexpected; the message
    /// names it and its file.</exception>
    public void LoadInto(Module model, string basePrefix, Func<string, bool> ignorable) =>
        LoadInto(model, basePrefix, ignorable, null, null, null);

    /// <summary>
    /// As <see cref="LoadInto(Module, string, Func{string, bool})"/>, with three more duties. The parameters in
    /// <paramref name="divert"/> are read into one reusable scratch and handed to their action instead of their own
    /// (never touched) storage: a base quantised on load never holds its float32 weights all at once. The parameters
    /// in <paramref name="provided"/> (weights a quantised cache supplies) are matched
    /// and shape-checked like the others but never read. With <paramref name="checksum"/>, tensors are read in ordinal
    /// order of the parameters' names and each is added to it as it passes, so the checksum ends as the float32
    /// model's <c>BaseChecksum</c> even for weights that are only ever held quantised.
    /// </summary>
    /// <exception cref="ArgumentException">Both a checksum and provided parameters (their values never pass
    /// here).</exception>
    internal void LoadInto(Module model, string basePrefix, Func<string, bool> ignorable,
        IReadOnlyDictionary<Parameter, TensorSink>? divert, IReadOnlySet<Parameter>? provided,
        ParameterChecksum? checksum)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(ignorable);
        if (checksum is not null && provided is { Count: > 0 })
            throw new ArgumentException("HfWeights.LoadInto: a checksum needs every tensor's " +
                "values; some are provided.");
        var plan = new List<(string Name, Parameter Param, string Stored, SafeTensorsReader Reader)>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        string where = _readers.Count == 1 ? _readers[0].Path
            : Path.Combine(Path.GetDirectoryName(_readers[0].Path) ?? "", IndexFile);
        foreach (var (name, p) in model.NamedParameters())
        {
            string bare = name.StartsWith(basePrefix, StringComparison.Ordinal) ? name[basePrefix.Length..] : name;
            string? stored = _byName.ContainsKey(name) ? name : _byName.ContainsKey(bare) ? bare : null;
            if (stored is null)
                throw new InvalidDataFormatException(where, name, $"missing (looked for '{name}' and '{bare}').");
            SafeTensorsReader reader = _byName[stored];
            int[] shape = reader.ShapeOf(stored);
            if (!shape.AsSpan().SequenceEqual(p.Shape))
                throw new InvalidDataFormatException(reader.Path, stored,
                    $"shape {Shapes.Format(shape)} in the file but the config gives {Shapes.Format(p.Shape)}.");
            used.Add(stored);
            if (provided is null || !provided.Contains(p)) plan.Add((name, p, stored, reader));
        }
        foreach (string name in _byName.Keys.Order(StringComparer.Ordinal))
            if (!used.Contains(name) && !ignorable(name))
                throw new InvalidDataFormatException(_byName[name].Path, name,
                    "unexpected tensor: no parameter of the model takes it (wrong config.json?).");
        if (checksum is not null) plan.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        else if (divert is not null)
            plan = plan.Where(e => !divert.ContainsKey(e.Param))
                .Concat(plan.Where(e => divert.ContainsKey(e.Param)).OrderByDescending(e => e.Param.Count)).ToList();
        // Diverted tensors go through one scratch outside the garbage-collected heap: freed, its pages go back to the
        // system at once, where a 262 MB float[] for a 32,000-row table would stay resident beside the whole quantised
        // model and, later, the training step. It grows to the tensor at hand and shrinks once the tensors left are a
        // quarter of it. Without a checksum the diverted tensors come largest first, so the scratch is largest while
        // the model is still empty; a checksum needs the names' order (a Llama's tables come first there too).
        float* scratch = null;
        long length = 0;
        try
        {
            foreach (var (name, p, stored, reader) in plan)
            {
                if (divert is null || !divert.TryGetValue(p, out var sink))
                {
                    reader.ReadInto(stored, p.Data);
                    checksum?.Append(name, p.Shape, p.Data);
                    continue;
                }
                if (length < p.Count || (length > 1 << 22 && p.Count <= length / 4))
                {
                    NativeMemory.Free(scratch);
                    scratch = null;   // not freed twice if the allocation below throws
                    scratch = (float*)NativeMemory.Alloc((nuint)p.Count, sizeof(float));
                    length = p.Count;
                }
                var values = new Span<float>(scratch, p.Count);
                reader.ReadInto(stored, values);
                checksum?.Append(name, p.Shape, values);
                sink(values);
            }
        }
        finally
        {
            NativeMemory.Free(scratch);
        }
    }

    /// <summary>Takes a tensor's values, read in float32, that bypass its parameter (a weight quantised on
    /// load).</summary>
    internal delegate void TensorSink(ReadOnlySpan<float> values);

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var r in _readers) r.Dispose();
        _readers.Clear();
    }
}
