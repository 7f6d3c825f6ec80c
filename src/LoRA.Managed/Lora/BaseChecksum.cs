using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Lora;

/// <summary>
/// A SHA-256 fingerprint of a model's weights, stored with an adapter so it is not applied to a base it
/// was not trained on. It hashes, for each parameter in name order (ordinal): the UTF-8 name, the
/// shape as little-endian int32s, and the float32 values' little-endian bytes.
/// </summary>
public static class BaseChecksum
{
    /// <summary>The fingerprint of <paramref name="state"/> as lower-case hex.</summary>
    public static string Compute(IEnumerable<KeyValuePair<string, Tensor>> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> four = stackalloc byte[4];
        foreach (var (name, t) in state.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            hash.AppendData(Encoding.UTF8.GetBytes(name));
            hash.AppendData([0]);
            foreach (int d in t.Shape)
            {
                BinaryPrimitives.WriteInt32LittleEndian(four, d);
                hash.AppendData(four);
            }
            if (BitConverter.IsLittleEndian)
                hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes((ReadOnlySpan<float>)t.Data));
            else
                foreach (float v in t.Data)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(four, v);
                    hash.AppendData(four);
                }
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>The fingerprint of every parameter of <paramref name="model"/> under its state_dict name; empty
    /// for a base with quantised layers (<see cref="IQuantizableWeight.IsQuantized"/>), whose float32 weights are gone: an adapter
    /// trained on it carries no fingerprint, and none is checked against it, so adapters move freely between a
    /// quantised base and its float32 original (the point of QLoRA).</summary>
    public static string Compute(Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.NamedModules().Any(m => m.Value is IQuantizableWeight { IsQuantized: true })) return "";
        return Compute(model.NamedParameters().Select(p => new KeyValuePair<string, Tensor>(p.Key, p.Value)));
    }
}
