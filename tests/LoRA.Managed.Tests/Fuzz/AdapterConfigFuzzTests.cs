using System.Text;
using CsCheck;
using LoRA.Managed.IO;
using LoRA.Managed.Lora;

namespace LoRA.Managed.Tests.Fuzz;

/// <summary>
/// The <c>adapter_config.json</c> reader against 10,000 seeded mutations of valid configs: structural JSON edits
/// (type changes, missing, extra, renamed and duplicated keys, nudged and huge numbers, deep nesting, hostile
/// strings) and byte-level damage (truncation, bit flips that break UTF-8, inserted and deleted bytes).
/// </summary>
public class AdapterConfigFuzzTests
{
    internal sealed record ConfigCase(int Base, JsonEdit[] Edits, ByteMutation[] Bytes)
    {
        public override string ToString() =>
            $"base {Base}, edits [{string.Join(", ", Edits.AsEnumerable())}], bytes " +
            $"[{string.Join(", ", Bytes.AsEnumerable())}]";
    }

    private static readonly byte[][] Bases =
    [
        .. new[]
        {
            new LoraConfig { Rank = 4, Alpha = 1, Scaling = LoraScaling.Alpha, TargetModules = ["layers.5"] },
            new LoraConfig { Rank = 2, Alpha = 16, TargetModules = ["layers.1", "layers.3"], Bias = LoraBias.All,
                ModulesToSave = ["layers.5"], Scaling = LoraScaling.RsLora },
            new LoraConfig { Rank = 8, TargetModules = ["layers.3"], Init = LoraInit.Pissa, Bias = LoraBias.LoraOnly },
            new LoraConfig { Rank = 1, Alpha = 0.5, Dropout = 0.1f, TargetModules = ["*.q_proj", "v_proj"],
                Init = LoraInit.Gaussian },
        }.Select(c => Encoding.UTF8.GetBytes(AdapterConfigFile.ToJson(c))),
        Encoding.UTF8.GetBytes("{\"peft_type\":\"LORA\",\"r\":8,\"target_modules\":[\"q_proj\",\"v_proj\"]}"),
        Encoding.UTF8.GetBytes("{\"base_model_name_or_path\":\"gpt2\",\"task_type\":\"CAUSAL_LM\"," +
            "\"peft_type\":\"LORA\",\"r\":16,\"lora_alpha\":32," +
            "\"lora_dropout\":0.05,\"bias\":\"none\",\"target_modules\":[\"c_attn\"]," +
            "\"rank_pattern\":{\"h.0.c_attn\":4},\"alpha_pattern\":{}," +
            "\"init_lora_weights\":\"pissa_niter_16\",\"use_rslora\":false,\"use_dora\":false," +
            "\"fan_in_fan_out\":false,\"modules_to_save\":null}"),
    ];

    private static Gen<ConfigCase> Cases()
    {
        var edits = JsonEdits.Any().Array[1, 3];
        var bytes = ByteMutation.Any([0, 8, 16], 4, bigEndian: false).Array[1, 3];
        var b = Gen.Int[0, Bases.Length - 1];
        return Gen.Frequency(
            (6, Gen.Select(b, edits, (i, e) => new ConfigCase(i, e, []))),
            (3, Gen.Select(b, bytes, (i, m) => new ConfigCase(i, [], m))),
            (1, Gen.Select(b, edits, bytes, (i, e, m) => new ConfigCase(i, e, m))));
    }

    private static byte[] Build(ConfigCase c)
    {
        byte[] json = c.Edits.Length == 0 ? Bases[c.Base] : JsonEdits.Apply(Bases[c.Base], c.Edits);
        foreach (var m in c.Bytes) json = m.Apply(json);
        return json;
    }

    [Test]
    public void AdapterConfigsEndInSuccessOrTheDocumentedException()
    {
        var report = ParserFuzzer.Run("adapter_config.json", Cases(), 0xC0F1_0001UL, Build,
            bytes => AdapterConfigFile.Parse(bytes, ParserFuzzer.Source),
            (_, result) =>
            {
                var config = (LoraConfig)result;
                try { config.Validate(); }
                catch (ArgumentException e)
                {
                    throw new FuzzFailure($"accepted a config the library refuses later: {e.Message}", e);
                }
            });
        ParserFuzzer.AssertMixed(report, minAcceptedShare: 0.05);
    }
}
