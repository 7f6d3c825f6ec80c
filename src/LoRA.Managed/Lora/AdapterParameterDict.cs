using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Lora;

/// <summary>
/// PEFT's <c>nn.ParameterDict</c> keyed by adapter name, so names come out as <c>lora_embedding_A.default</c> (no
/// <c>.weight</c>): the factors of <see cref="LoraEmbedding"/>. A container only.
/// </summary>
public sealed class AdapterParameterDict : Module
{
    private readonly Dictionary<string, Parameter> _items = new(StringComparer.Ordinal);

    /// <summary>The parameter of adapter <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No adapter has that name; the message lists those that exist.</exception>
    public Parameter this[string name] => _items.TryGetValue(name, out var p)
        ? p
        : throw new KeyNotFoundException(
            $"AdapterParameterDict: no adapter '{name}'; adapters: {string.Join(", ", _items.Keys)}.");

    /// <summary>True when an adapter of that name exists.</summary>
    public bool Contains(string name) => _items.ContainsKey(name);

    internal void Add(string name, Parameter parameter) => _items.Add(name, RegisterParameter(name, parameter));

    /// <summary>Removes the parameter of a deleted adapter.</summary>
    internal void Remove(string name)
    {
        _items.Remove(name);
        RemoveParameter(name);
    }

    /// <summary>Always throws: a dictionary of parameters has no forward.</summary>
    /// <exception cref="InvalidOperationException">Always.</exception>
    public override Tensor Forward(Tensor input) =>
        throw new InvalidOperationException(
            "AdapterParameterDict: a container of LoRA factors has no forward; LoraEmbedding applies the active factor.");
}
