using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Lora;

/// <summary>
/// A SHA-256 fingerprint of a model's weights, stored with an adapter so it is not applied to a base it
/// was not trained on. It hashes, for each parameter in name order (ordinal): the UTF-8 name, a 0 byte, the
/// shape as little-endian int32s, and the float32 values' little-endian bytes (<see cref="ParameterChecksum"/>).
/// </summary>
public static class BaseChecksum
{
    /// <summary>The fingerprint of <paramref name="state"/> as lower-case hex.</summary>
    public static string Compute(IEnumerable<KeyValuePair<string, Tensor>> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var checksum = new ParameterChecksum();
        foreach (var (name, t) in state.OrderBy(p => p.Key, StringComparer.Ordinal))
            checksum.Append(name, t.Shape, t.Data);
        return checksum.Finish();
    }

    /// <summary>
    /// The fingerprint of every parameter of <paramref name="model"/> under its state_dict name. A base quantised on
    /// load gives the fingerprint of the float32 weights it was loaded from, recorded while loading
    /// (<see cref="IFloat32Checksum"/>): an adapter trained on an NF4 base checks against its float32 original and
    /// the other way round (the point of QLoRA). A model quantised in code
    /// (<see cref="IQuantizableWeight.QuantizeWeight(Kernels.BaseDType, ReadOnlySpan{float})"/>) has no record and no
    /// float32 weights left: it gives an empty string, and its adapters carry no fingerprint.
    /// </summary>
    public static string Compute(Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model is IFloat32Checksum { Float32Checksum: { } recorded }) return recorded;
        if (model.NamedModules().Any(m => m.Value is IQuantizableWeight { IsQuantized: true })) return "";
        return Compute(model.NamedParameters().Select(p => new KeyValuePair<string, Tensor>(p.Key, p.Value)));
    }
}
