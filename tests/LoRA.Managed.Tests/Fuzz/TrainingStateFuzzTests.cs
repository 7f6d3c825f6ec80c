using System.Text.Json.Nodes;
using CsCheck;
using LoRA.Managed.Data;
using LoRA.Managed.Models;
using LoRA.Managed.Tensors;
using LoRA.Managed.Training;

namespace LoRA.Managed.Tests.Fuzz;

/// <summary>
/// A checkpoint's <c>trainer_state.json</c> and <c>rng_state.json</c> (<see cref="TrainingPosition"/>) against 10,000
/// seeded mutations each of files a real run wrote: structural JSON edits and byte damage. An accepted pair must be one
/// a resume can use: counts that agree with the steps taken and generator states <see cref="TorchGenerator.SetState"/>
/// takes.
/// </summary>
public class TrainingStateFuzzTests
{
    internal sealed record StateCase(int Base, JsonEdit[] Edits, ByteMutation[] Bytes)
    {
        public override string ToString() => $"base {Base}, edits [{string.Join(", ", Edits.AsEnumerable())}], bytes " +
            $"[{string.Join(", ", Bytes.AsEnumerable())}]";
    }

    /// <summary>The files of two checkpoints of a tiny shuffled run (steps 3 and 8, mid-epoch and later), written
    /// once.</summary>
    private static readonly Lazy<(byte[] State, byte[] Rng)[]> Bases = new(() =>
    {
        string dir = Directory.CreateTempSubdirectory("state-fuzz-").FullName;
        try
        {
            var gen = new TorchGenerator(1);
            var labels = Enumerable.Range(0, 40).Select(i => (byte)(i % 3)).ToArray();
            var pixels = Enumerable.Range(0, 40 * 4).Select(i => (byte)(i * 11 % 256)).ToArray();
            var task = new ClassificationTask(new DataLoader(new MnistDataset(pixels, labels, 4), 8, shuffle: true,
                generator: gen));
            var args = new TrainingArguments
            {
                PerDeviceTrainBatchSize = 8, NumTrainEpochs = 2, OutputDir = dir,
                    SaveStrategy = IntervalStrategy.Steps, SaveSteps = 1,
                LearningRate = 1e-2, LoggingSteps = 2, RunTags = new Dictionary<string, string> { ["digits"] = "0-2" },
            };
            new Trainer(new Mlp(gen, 4, 5, 3), args).Train(task);
            return new[] { 3, 8 }.Select(step => Path.Combine(dir, TrainerCheckpoint.DirectoryName(step)))
                .Select(c => (File.ReadAllBytes(Path.Combine(c, TrainerCheckpoint.StateFileName)),
                    File.ReadAllBytes(Path.Combine(c, TrainingPosition.RngFileName))))
                .ToArray();
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    });

    private static Gen<StateCase> Cases()
    {
        var edits = JsonEdits.Any().Array[1, 3];
        var bytes = ByteMutation.Any([0, 8, 16], 4, bigEndian: false).Array[1, 3];
        var b = Gen.Int[0, 1];
        return Gen.Frequency(
            (7, Gen.Select(b, edits, (i, e) => new StateCase(i, e, []))),
            (2, Gen.Select(b, bytes, (i, m) => new StateCase(i, [], m))),
            (1, Gen.Select(b, edits, bytes, (i, e, m) => new StateCase(i, e, m))));
    }

    private static byte[] Build(byte[] valid, StateCase c)
    {
        byte[] json = c.Edits.Length == 0 ? valid : JsonEdits.Apply(valid, c.Edits);
        foreach (var m in c.Bytes) json = m.Apply(json);
        return json;
    }

    /// <summary>
    /// As <see cref="Build"/>, with each 624-word <c>mt</c> array held as one raw value while the structural edits run,
    /// so they hit the document's structure rather than, nearly always, one of its 1,248 words (and run 50 times
    /// faster); the byte damage afterwards still reaches the words.
    /// </summary>
    private static byte[] BuildRng(byte[] valid, StateCase c)
    {
        byte[] json = valid;
        if (c.Edits.Length > 0)
        {
            var (template, words) = RngTemplates.Value[c.Base];
            var root = JsonNode.Parse(template)!;   // small: the words are not in it
            var doc = new JsonEditor(root);
            foreach (string key in new[] { "epoch_start", "current" })
                if (root[key] is JsonObject o && words.TryGetValue(key, out string? mt)) o["mt"] = doc.Raw(mt);
            foreach (var e in c.Edits) e.Apply(doc);
            json = doc.ToUtf8();
        }
        foreach (var m in c.Bytes) json = m.Apply(json);
        return json;
    }

    /// <summary>Each base rng file with its <c>mt</c> arrays cut out (as text by key), parsed once instead of per
    /// case.</summary>
    private static readonly Lazy<(string Template, Dictionary<string, string> Words)[]> RngTemplates = new(() =>
        Bases.Value.Select(b =>
        {
            var root = JsonNode.Parse(b.Rng)!;
            var words = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (string key in new[] { "epoch_start", "current" })
                if (root[key] is JsonObject o && o["mt"] is { } mt)
                {
                    words[key] = mt.ToJsonString();
                    o["mt"] = "words";
                }
            return (root.ToJsonString(), words);
        }).ToArray());

    private static void Check(object result)
    {
        var position = (((TrainingPosition, JsonObject))result).Item1;
        if (position.StepLosses.Count != position.GlobalStep || position.LearningRates.Count != position.GlobalStep)
            throw new FuzzFailure($"accepted {position.StepLosses.Count} losses and {position.LearningRates.Count} " +
                $"rates for {position.GlobalStep} steps");
        if (position.LoggedUpTo > position.GlobalStep || position.BatchIndex > position.BatchesPerEpoch)
            throw new FuzzFailure($"accepted logged_up_to {position.LoggedUpTo} / batch_index {position.BatchIndex} " +
                "beyond the run");
        foreach (var state in new[] { position.EpochStartRng, position.CurrentRng })
        {
            if (state is null) continue;
            try { new TorchGenerator().SetState(state); }
            catch (ArgumentException e) { throw new FuzzFailure("accepted a generator state SetState refuses: " +
                $"{e.Message}", e); }
        }
    }

    [Test]
    public void TrainerStateFilesEndInSuccessOrTheDocumentedException()
    {
        var report = ParserFuzzer.Run("trainer_state.json", Cases(), 0x57A7_0001UL, c
            => Build(Bases.Value[c.Base].State, c),
            bytes => TrainingPosition.Parse(bytes, ParserFuzzer.Source, Bases.Value[0].Rng, "rng_state.json"),
            (_, result) => Check(result));
        ParserFuzzer.AssertMixed(report, minAcceptedShare: 0.05);
    }

    [Test]
    public void RngStateFilesEndInSuccessOrTheDocumentedException()
    {
        var report = ParserFuzzer.Run("rng_state.json", Cases(), 0x57A7_0002UL, c => BuildRng(Bases.Value[c.Base].Rng,
            c),
            bytes => TrainingPosition.Parse(Bases.Value[0].State, "trainer_state.json", bytes, ParserFuzzer.Source),
            (_, result) => Check(result));
        ParserFuzzer.AssertMixed(report, minAcceptedShare: 0.05);
    }
}
