using LoRA.Managed.Autograd;
using LoRA.Managed.Lora;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Nn;

namespace LoRA.Managed.Tests.Models;

/// <summary>
/// The llama-gqa-tied fixture as the live-adapter tests use it (<c>using static</c>): its folder, its ids, the logits
/// of a model over them, and the logits of the base loaded with one adapter alone, the reference every switch, delete
/// and unload is held to.
/// </summary>
internal static class LiveAdapterFixture
{
    public static readonly string Folder = HfFixtures.Folder("llama-gqa-tied");
    public static readonly int[] Ids = HfFixtures.Ints(HfFixtures.Expected("llama-gqa-tied").GetProperty("ids"));

    public static float[] Logits(ICausalLanguageModel model)
    {
        using (Tape.NoGrad()) return model.Forward(Ids, 1, Ids.Length).Data.ToArray();
    }

    /// <summary>A fresh base with only <paramref name="adapter"/> (a folder name inside the fixture, or a
    /// path).</summary>
    public static float[] Alone(string adapter) =>
        Logits(PeftModel.FromPretrained(HfModel.Load(Folder), Path.Combine(Folder, adapter)));
}
