using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Lora;

/// <summary>
/// PEFT's per-adapter dictionaries, keyed by adapter name: an <c>nn.ModuleDict</c> when <typeparamref name="T"/> is a
/// module (<c>lora_A</c>, <c>lora_B</c> of <see cref="LoraFactor"/>, <c>lora_magnitude_vector</c> of
/// <see cref="DoraMagnitude"/>: names come out as <c>lora_A.default.weight</c>), an <c>nn.ParameterDict</c> when it
/// is a <see cref="Parameter"/> (<c>lora_embedding_A</c>: <c>lora_embedding_A.default</c>, no <c>.weight</c>).
/// A container only: it has no forward of its own.
/// </summary>
/// <typeparam name="T">A <see cref="Module"/> or a <see cref="Parameter"/>.</typeparam>
public sealed class AdapterDict<T> : Module where T : class
{
    private readonly Dictionary<string, T> _items = new(StringComparer.Ordinal);

    /// <summary>The entry of adapter <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No adapter has that name; the message lists those that exist.</exception>
    public T this[string name] => _items.TryGetValue(name, out var item)
        ? item
        : throw new KeyNotFoundException(
            $"AdapterDict: no adapter '{name}'; adapters: {string.Join(", ", _items.Keys)}.");

    /// <summary>True when an adapter of that name exists.</summary>
    public bool Contains(string name) => _items.ContainsKey(name);

    /// <summary>Adds the entry of a new adapter, registered as a child module or a parameter.</summary>
    internal void Add(string name, T item)
    {
        if (item is Parameter p) RegisterParameter(name, p);
        else RegisterModule(name, item as Module ?? throw new ArgumentException(
            $"AdapterDict: an entry is a Module or a Parameter, not a {item.GetType().Name}."));
        _items.Add(name, item);
    }

    /// <summary>Removes the entry of a deleted adapter.</summary>
    internal void Remove(string name)
    {
        if (!_items.Remove(name, out var item)) return;
        if (item is Parameter) RemoveParameter(name);
        else RemoveChild(name);
    }

    /// <summary>Always throws: a dictionary of adapters is not applied as a whole.</summary>
    /// <exception cref="InvalidOperationException">Always.</exception>
    public override Tensor Forward(Tensor input) => throw new InvalidOperationException(
        "AdapterDict: a container of adapter weights has no forward; the adapted layer applies the active one.");
}
