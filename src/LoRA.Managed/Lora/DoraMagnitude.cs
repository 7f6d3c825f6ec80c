using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Lora;

/// <summary>
/// DoRA's magnitude vector m (one entry per output feature) of one adapter, PEFT's <c>DoraLinearLayer</c>: a module
/// holding the single parameter <c>weight</c>, so its in-memory name is
/// <c>X.lora_magnitude_vector.&lt;adapter&gt;.weight</c> (PEFT's file drops the adapter name and the
/// <c>.weight</c>: <c>base_model.model.X.lora_magnitude_vector</c>). Applied by <see cref="LoraLinear"/> through
/// <see cref="Dora"/>.
/// </summary>
public sealed class DoraMagnitude : Module
{
    /// <summary>Creates a zero magnitude of <paramref name="outFeatures"/> entries.</summary>
    public DoraMagnitude(int outFeatures) => Weight = RegisterParameter("weight", new Parameter(outFeatures));

    /// <summary>m, (out).</summary>
    public Parameter Weight { get; }

    /// <summary>Always throws: the magnitude rescales a layer's output, which <see cref="LoraLinear"/> does.</summary>
    /// <exception cref="InvalidOperationException">Always.</exception>
    public override Tensor Forward(Tensor input) =>
        throw new InvalidOperationException("DoraMagnitude: a magnitude vector has no forward; LoraLinear applies it.");
}

/// <summary>PEFT's <c>lora_magnitude_vector</c> <c>ModuleDict</c>: the DoRA magnitudes of a layer by adapter
/// name.</summary>
public sealed class DoraMagnitudes : Module
{
    private readonly Dictionary<string, DoraMagnitude> _items = new(StringComparer.Ordinal);

    /// <summary>The magnitude of adapter <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No DoRA adapter has that name.</exception>
    public DoraMagnitude this[string name] => _items.TryGetValue(name, out var m)
        ? m
        : throw new KeyNotFoundException(
            $"DoraMagnitudes: no DoRA adapter '{name}'; DoRA adapters: {string.Join(", ", _items.Keys)}.");

    /// <summary>True when adapter <paramref name="name"/> uses DoRA on this layer.</summary>
    public bool Contains(string name) => _items.ContainsKey(name);

    internal void Add(string name, DoraMagnitude magnitude) => _items.Add(name, RegisterModule(name, magnitude));

    /// <summary>Removes the magnitude of a deleted adapter.</summary>
    internal void Remove(string name)
    {
        _items.Remove(name);
        RemoveChild(name);
    }

    /// <summary>Always throws: a container has no forward.</summary>
    /// <exception cref="InvalidOperationException">Always.</exception>
    public override Tensor Forward(Tensor input) =>
        throw new InvalidOperationException("DoraMagnitudes: a container of magnitude vectors has no forward.");
}
