using System.Text.Json;
using LoRA.Managed.Autograd;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;

namespace LoRA.Managed.Tests.Models;

/// <summary>
/// PEFT adapters that use the per-layer options (issue 15), written by a twin of PEFT's selection logic
/// (tests/fixtures/hf/make_pattern_fixtures.py): <c>rank_pattern</c>, <c>alpha_pattern</c>, <c>exclude_modules</c>
/// in one, <c>layers_to_transform</c> with <c>layers_pattern</c> in the other. They must land on the same modules
/// with the same rank and scale as in PEFT, and give the twin's logits.
/// </summary>
public class HfPatternTwinTests
{
    [TestCase("pattern-adapter")]
    [TestCase("layers-adapter")]
    public void PeftAdapterWithPerLayerOptionsReproducesTheTwin(string adapter)
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder("llama-gqa-tied"));
        var peft = PeftModel.FromPretrained(model, Path.Combine(HfFixtures.Folder("llama-gqa-tied"), adapter));
        var expected = HfFixtures.Json(Path.Combine("llama-gqa-tied", "pattern_expected.json")).GetProperty(adapter);

        var want = expected.GetProperty("targets").EnumerateObject()
            .ToDictionary(p => p.Name, p => (Rank: p.Value[0].GetInt32(), Scale: p.Value[1].GetDouble()));
        var have = peft.LoraLayers().ToDictionary(p => p.Key, p => p.Value);
        Assert.That(have.Keys, Is.EquivalentTo(want.Keys));
        foreach (var (name, (rank, scale)) in want)
        {
            Assert.That(have[name].LoraA["default"].Weight.Shape[0], Is.EqualTo(rank), name);
            Assert.That(have[name].Scale("default"), Is.EqualTo(scale).Within(1e-12), name);
        }

        int[] ids = HfFixtures.Ints(HfFixtures.Expected("llama-gqa-tied").GetProperty("ids"));
        float[] logits;
        using (Tape.NoGrad()) logits = model.Forward(ids, 1, ids.Length).Data.ToArray();
        HfModelTwinTests.AssertClose(logits, HfFixtures.Floats(expected.GetProperty("logits")), 2e-4, adapter);
    }
}
