using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Lora;

/// <summary>
/// PEFT's <c>nn.ModuleDict</c> of factors keyed by adapter name, so names come out as
/// <c>lora_A.default.weight</c>. A container only: it has no forward of its own.
/// </summary>
public sealed class AdapterDict : Module
{
    private readonly Dictionary<string, LoraFactor> _factors = new(StringComparer.Ordinal);

    /// <summary>The factor of adapter <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No adapter has that name; the message lists those that exist.</exception>
    public LoraFactor this[string name] => _factors.TryGetValue(name, out var f)
        ? f
        : throw new KeyNotFoundException($"AdapterDict: no adapter '{name}'; adapters: {string.Join(", ", _factors.Keys)}.");

    /// <summary>True when an adapter of that name exists.</summary>
    public bool Contains(string name) => _factors.ContainsKey(name);

    /// <summary>Adds the factor of a new adapter.</summary>
    internal void Add(string name, LoraFactor factor) => _factors.Add(name, RegisterModule(name, factor));

    /// <summary>Removes the factor of a deleted adapter.</summary>
    internal void Remove(string name)
    {
        _factors.Remove(name);
        RemoveChild(name);
    }

    /// <summary>Always throws: a dictionary of factors is not applied as a whole.</summary>
    /// <exception cref="InvalidOperationException">Always.</exception>
    public override Tensor Forward(Tensor input) =>
        throw new InvalidOperationException("AdapterDict: a container of LoRA factors has no forward; LoraLinear applies the active factor.");
}
