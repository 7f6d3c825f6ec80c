using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace LoRA.Managed.Nn;

/// <summary>
/// The SHA-256 fingerprint of a set of float32 parameters that <c>Lora.BaseChecksum</c> defines, fed one parameter at
/// a time: for each, in ordinal name order, the UTF-8 name, a 0 byte, the shape as little-endian int32s and the values'
/// little-endian bytes. A loader feeds it the values as they pass from the file to the model, so the fingerprint of a
/// base whose weights are quantised on load (and so never held in float32 together) is the float32 model's.
/// </summary>
public sealed class ParameterChecksum : IDisposable
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private string? _last;

    /// <summary>Adds one parameter; names must come in strictly increasing ordinal order, as the definition
    /// hashes them.</summary>
    /// <exception cref="ArgumentException">The name is not after the previous one.</exception>
    public void Append(string name, ReadOnlySpan<int> shape, ReadOnlySpan<float> values)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (_last is not null && string.CompareOrdinal(_last, name) >= 0)
            throw new ArgumentException(
                $"ParameterChecksum: '{name}' after '{_last}' (the names must be in ordinal order).");
        _last = name;
        _hash.AppendData(Encoding.UTF8.GetBytes(name));
        _hash.AppendData([0]);
        Span<byte> four = stackalloc byte[4];
        foreach (int d in shape)
        {
            BinaryPrimitives.WriteInt32LittleEndian(four, d);
            _hash.AppendData(four);
        }
        if (BitConverter.IsLittleEndian)
            _hash.AppendData(MemoryMarshal.AsBytes(values));
        else
            foreach (float v in values)
            {
                BinaryPrimitives.WriteSingleLittleEndian(four, v);
                _hash.AppendData(four);
            }
    }

    /// <summary>The fingerprint of everything appended, as lower-case hex; the checksum starts over.</summary>
    public string Finish()
    {
        _last = null;
        return Convert.ToHexStringLower(_hash.GetHashAndReset());
    }

    /// <inheritdoc />
    public void Dispose() => _hash.Dispose();
}
