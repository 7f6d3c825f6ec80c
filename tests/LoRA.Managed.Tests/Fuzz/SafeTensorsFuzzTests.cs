using System.Buffers.Binary;
using System.Text;
using CsCheck;
using LoRA.Managed.IO;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Fuzz;

/// <summary>
/// The safetensors reader against 10,000 seeded mutations of valid files: structural edits of the JSON header
/// (type changes, missing, extra, renamed and duplicated keys, swapped values such as two tensors' offsets,
/// numbers nudged by a few or set to 1e400 and 2⁶⁴, nesting up to 100,000 deep, lone surrogates) with the length
/// prefix kept right, and byte-level damage anywhere (truncation, bit flips, the header length set to edge values
/// or nudged, inserted and deleted bytes).
/// </summary>
public class SafeTensorsFuzzTests
{
    internal sealed record SafeCase(int Base, JsonEdit[] Edits, int Padding, ByteMutation[] Bytes)
    {
        public override string ToString() =>
            $"base {Base}, edits [{string.Join(", ", Edits.AsEnumerable())}], padding {Padding}, bytes " +
            $"[{string.Join(", ", Bytes.AsEnumerable())}]";
    }

    private static byte[] File(string header, byte[] data)
    {
        byte[] h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)h.Length);
        h.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + h.Length);
        return bytes;
    }

    private static readonly byte[][] Bases = MakeBases();

    private static byte[][] MakeBases()
    {
        var g = new TorchGenerator(7);
        return
        [
            SafeTensors.Serialize(new Dictionary<string, Tensor> { ["w"] = g.Rand(2, 3), ["b"] = g.Rand(3) },
                new Dictionary<string, string> { ["format"] = "pt" }),
            SafeTensors.Serialize(new Dictionary<string, Tensor> { ["x"] = g.Rand(1) }),
            SafeTensors.Serialize(new Dictionary<string, Tensor>
            {
                ["base_model.model.layers.5.lora_A.weight"] = g.Rand(2, 4),
                ["base_model.model.layers.5.lora_B.weight"] = g.Rand(3, 2),
            }, new Dictionary<string, string> { ["format"] = "pt",
                ["lora_managed.base_sha256"] = new string('a', 64) }),
            SafeTensors.Serialize(new Dictionary<string, Tensor> { ["t"] = g.Rand(1, 2, 1, 2) }),
            File("{\"h\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]},\"z\":{\"dtype\":\"BF16\"," +
                "\"shape\":[3],\"data_offsets\":[8,14]}," +
                 "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[14,22]}}",
                 [0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0xFF, 0x7B, 0x80, 0x3F, 0x40, 0xC0, 0x49, 0x40, 0, 0, 0, 0, 0, 0,
                     0xF0, 0x3F]),
            File("{\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},\"a\":{\"dtype\":\"F32\"," +
                "\"shape\":[2],\"data_offsets\":[0,8]}," +
                 "\"f\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[8,8]}}", new byte[8]),
        ];
    }

    private static Gen<SafeCase> Cases()
    {
        var edits = JsonEdits.Any().Array[1, 3];
        var bytes = ByteMutation.Any([0, 4], 8, bigEndian: false).Array[1, 4];
        var none = Gen.Const(Array.Empty<JsonEdit>());
        var noBytes = Gen.Const(Array.Empty<ByteMutation>());
        var padding = Gen.Frequency((3, Gen.Const(0)), (1, Gen.Int[1, 7]));
        var b = Gen.Int[0, Bases.Length - 1];
        return Gen.Frequency(
            (5, Gen.Select(b, edits, padding, noBytes, (i, e, p, m) => new SafeCase(i, e, p, m))),
            (4, Gen.Select(b, none, padding, bytes, (i, e, p, m) => new SafeCase(i, e, p, m))),
            (1, Gen.Select(b, edits, padding, bytes, (i, e, p, m) => new SafeCase(i, e, p, m))));
    }

    private static byte[] Build(SafeCase c)
    {
        byte[] file = Bases[c.Base];
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        byte[] header = file[8..(8 + n)], data = file[(8 + n)..];
        if (c.Edits.Length > 0) header = JsonEdits.Apply(header, c.Edits);
        var rebuilt = new byte[8 + header.Length + c.Padding + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(rebuilt, (ulong)(header.Length + c.Padding));
        header.CopyTo(rebuilt, 8);
        rebuilt.AsSpan(8 + header.Length, c.Padding).Fill((byte)' ');
        data.CopyTo(rebuilt, 8 + header.Length + c.Padding);
        foreach (var m in c.Bytes) rebuilt = m.Apply(rebuilt);
        return rebuilt;
    }

    [Test]
    public void SafeTensorsFilesEndInSuccessOrTheDocumentedException()
    {
        var report = ParserFuzzer.Run("safetensors", Cases(), 0x5AFE_0001UL, Build,
            bytes => SafeTensors.Parse(bytes, ParserFuzzer.Source),
            (input, result) =>
            {
                var file = (SafeTensorsFile)result;
                long covered = 0;
                foreach (var (name, t) in file.Tensors)
                {
                    long count = t.Shape.Aggregate(1L, (a, d) => a * d);
                    if (count != t.Count || t.Array.Length != t.Count)
                        throw new FuzzFailure($"accepted {name} with shape [{string.Join(", ", t.Shape)}] but " +
                            $"{t.Array.Length} values");
                    if (!file.DTypes.TryGetValue(name, out string? dtype))
                        throw new FuzzFailure($"accepted {name} without a dtype");
                    covered += count * (dtype switch { "F16" or "BF16" => 2, "F32" => 4, "F64" => 8,
                        _ => throw new FuzzFailure($"accepted dtype {dtype}") });
                }
                long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(input);
                if (8 + n + covered != input.Length)
                    throw new FuzzFailure($"accepted a file of {input.Length} bytes whose header ({n}) and tensors " +
                        $"({covered}) do not add up");
            });
        ParserFuzzer.AssertMixed(report);
    }
}
