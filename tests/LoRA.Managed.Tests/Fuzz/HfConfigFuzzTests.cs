using System.Text;
using System.Text.Json;
using CsCheck;
using LoRA.Managed.IO;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Tests.Docs;

namespace LoRA.Managed.Tests.Fuzz;

/// <summary>
/// A Hugging Face model folder's JSON files against 10,000 seeded mutations each: <c>config.json</c> (the four fixture
/// families and stories260K's), <c>generation_config.json</c> and the sharded <c>model.safetensors.index.json</c>.
/// Structural JSON edits and byte damage must end in a config or an <see cref="InvalidDataFormatException"/> naming the
/// file and field, never another exception; an accepted <c>config.json</c> must describe a model the builder can size
/// (positive dimensions, heads dividing it).
/// </summary>
public class HfConfigFuzzTests
{
    internal sealed record JsonCase(int Base, JsonEdit[] Edits, ByteMutation[] Bytes)
    {
        public override string ToString() =>
            $"base {Base}, edits [{string.Join(", ", Edits.AsEnumerable())}], bytes " +
            $"[{string.Join(", ", Bytes.AsEnumerable())}]";
    }

    private static byte[][] Files(string name)
    {
        string fixtures = Path.Combine(RepoPaths.Root, "tests", "fixtures", "hf");
        var found = Directory.GetDirectories(fixtures).Select(d => Path.Combine(d, name)).Where(File.Exists).ToList();
        string shared = Path.Combine(Path.GetDirectoryName(RepoPaths.Root)!, "shared", "models", "stories260K", name);
        if (File.Exists(shared)) found.Add(shared);
        Assert.That(found, Is.Not.Empty, $"no {name} to mutate under {fixtures}");
        return found.Select(File.ReadAllBytes).ToArray();
    }

    private static Gen<JsonCase> Cases(int bases)
    {
        var edits = JsonEdits.Any().Array[1, 3];
        var bytes = ByteMutation.Any([0, 8, 16], 4, bigEndian: false).Array[1, 3];
        var b = Gen.Int[0, bases - 1];
        return Gen.Frequency(
            (6, Gen.Select(b, edits, (i, e) => new JsonCase(i, e, []))),
            (3, Gen.Select(b, bytes, (i, m) => new JsonCase(i, [], m))),
            (1, Gen.Select(b, edits, bytes, (i, e, m) => new JsonCase(i, e, m))));
    }

    private static Func<JsonCase, byte[]> Builder(byte[][] bases) => c =>
    {
        byte[] json = c.Edits.Length == 0 ? bases[c.Base] : JsonEdits.Apply(bases[c.Base], c.Edits);
        foreach (var m in c.Bytes) json = m.Apply(json);
        return json;
    };

    // The parsers read a path; the fuzzer hands them bytes under the name it expects in messages.
    private static T ParseBytes<T>(byte[] bytes, Func<JsonFields, T> parse)
    {
        using JsonDocument doc = StrictJson.Parse(bytes, ParserFuzzer.Source, "json", 64);
        return parse(new JsonFields(doc.RootElement, ParserFuzzer.Source));
    }

    [Test]
    public void ConfigJsonEndsInSuccessOrTheDocumentedException()
    {
        byte[][] bases = Files("config.json");
        var report = ParserFuzzer.Run("config.json", Cases(bases.Length), 0xC0F1_0002UL, Builder(bases),
            bytes => ParseBytes(bytes, HfConfig.Parse),
            (_, result) =>
            {
                var c = (HfConfig)result;
                if (c.HiddenSize <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.KvHeads <= 0 || c.VocabSize <= 0
                    || c.MaxContext <= 0 || c.HeadDim <= 0)
                    throw new FuzzFailure($"accepted a config with a non-positive size: {c}");
                if (c.Heads % c.KvHeads != 0)
                    throw new FuzzFailure($"accepted {c.Heads} heads over {c.KvHeads} key/value heads");
            });
        ParserFuzzer.AssertMixed(report, minAcceptedShare: 0.05);
    }

    [Test]
    public void GenerationConfigEndsInSuccessOrTheDocumentedException()
    {
        byte[][] bases = [.. Files("generation_config.json"),
            Encoding.UTF8.GetBytes("{\"bos_token_id\":1,\"eos_token_id\":[2,32000],\"do_sample\":true," +
                "\"temperature\":0.6}")];
        var report = ParserFuzzer.Run("generation_config.json", Cases(bases.Length), 0xC0F1_0003UL, Builder(bases),
            bytes => ParseBytes(bytes, GenerationConfig.Parse),
            (_, result) =>
            {
                var g = (GenerationConfig)result;
                if (g.EosTokenIds.Any(id => id < 0)) throw new FuzzFailure("accepted a negative EOS id");
            });
        ParserFuzzer.AssertMixed(report, minAcceptedShare: 0.05);
    }

    [Test]
    public void ShardedIndexEndsInSuccessOrTheDocumentedException()
    {
        byte[][] bases = Files(HfWeights.IndexFile);
        var report = ParserFuzzer.Run(HfWeights.IndexFile, Cases(bases.Length), 0xC0F1_0004UL, Builder(bases),
            bytes => HfWeights.ParseIndex(bytes, ParserFuzzer.Source),
            (_, result) =>
            {
                foreach (var (tensor, file) in (List<(string Tensor, string File)>)result)
                    if (file.Length == 0 || file.Contains('/') || file.Contains('\\') || file is "." or "..")
                        throw new FuzzFailure($"accepted shard file '{file}' for {tensor}: not a plain " +
                            "file name in the folder");
            });
        ParserFuzzer.AssertMixed(report, minAcceptedShare: 0.05);
    }
}
