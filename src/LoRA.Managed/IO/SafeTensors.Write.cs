using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.IO;

public static partial class SafeTensors
{
    /// <summary>
    /// Serialises float32 tensors as the Python library does: tensors sorted by name (ordinal; all share one
    /// dtype, so the library's dtype-then-name order reduces to this), data laid out in that order, compact
    /// JSON with <c>__metadata__</c> first when present, header padded with spaces to a multiple of 8 bytes.
    /// </summary>
    public static byte[] Serialize(IReadOnlyDictionary<string, Tensor> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var names = tensors.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
        if (names.Contains(MetadataKey))
            throw new ArgumentException($"SafeTensors: '{MetadataKey}' is reserved and cannot name a tensor.");

        var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json,
            new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal)) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (string name in names)
            {
                Tensor t = tensors[name] ?? throw new ArgumentException($"SafeTensors: tensor '{name}' is null.");
                w.WriteStartObject(name);
                w.WriteString("dtype", "F32");
                w.WriteStartArray("shape");
                foreach (int d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset += 4L * t.Count);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        int headerLength = (int)json.Length;
        int padded = (headerLength + 7) / 8 * 8;
        long total = 8L + padded + names.Sum(n => 4L * tensors[n].Count);
        if (total > Array.MaxLength)
            throw new ArgumentException($"SafeTensors: {total} bytes is too large for one in-memory buffer.");

        var bytes = new byte[total];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)padded);
        json.GetBuffer().AsSpan(0, headerLength).CopyTo(bytes.AsSpan(8));
        bytes.AsSpan(8 + headerLength, padded - headerLength).Fill((byte)' ');
        int pos = 8 + padded;
        foreach (string name in names)
        {
            ReadOnlySpan<float> data = tensors[name].Data;
            if (BitConverter.IsLittleEndian) MemoryMarshal.AsBytes(data).CopyTo(bytes.AsSpan(pos));
            else for (int i = 0; i < data.Length; i++)
                BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(pos + 4 * i), data[i]);
            pos += 4 * data.Length;
        }
        return bytes;
    }

    /// <summary>Writes float32 tensors and optional metadata to <paramref name="path"/> atomically (see
    /// <see cref="AtomicFile"/>).</summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        byte[] bytes = Serialize(tensors, metadata);
        AtomicFile.Write(path, s => s.Write(bytes));
    }
}
