using System.Globalization;
using System.Text;
using LoRA.Managed.IO;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;

namespace LoRA.Managed.Cli;

/// <summary>
/// What <c>demo --out DIR</c> keeps: <c>base_model.safetensors</c>, the adapter in PEFT's layout under
/// <c>adapter/</c>, every step's loss as <c>losses.csv</c>, and <c>loss_curve.svg</c>. Every file is
/// written atomically. The plot is SVG, drawn here, so the tool stays free of native graphics libraries.
/// </summary>
internal static class RunArtifacts
{
    public const string BaseModelFile = "base_model.safetensors", AdapterDirectory = "adapter",
        LossesFile = "losses.csv", CurveFile = "loss_curve.svg";

    public static void SaveRun(string directory, Module baseModel, PeftModel adapted, IReadOnlyList<float> baseLosses,
        IReadOnlyList<float> loraLosses)
    {
        Directory.CreateDirectory(directory);
        ModelFile.Save(baseModel, Path.Combine(directory, BaseModelFile));
        adapted.SaveAdapter(Path.Combine(directory, AdapterDirectory));
        var csv = new StringBuilder("phase,step,loss\n");
        for (int i = 0; i < baseLosses.Count; i++)
            csv.Append(CultureInfo.InvariantCulture, $"base,{i + 1},{baseLosses[i]:R}\n");
        for (int i = 0; i < loraLosses.Count; i++)
            csv.Append(CultureInfo.InvariantCulture, $"lora,{i + 1},{loraLosses[i]:R}\n");
        AtomicFile.WriteAllBytes(Path.Combine(directory, LossesFile), Encoding.UTF8.GetBytes(csv.ToString()));
        AtomicFile.WriteAllBytes(Path.Combine(directory, CurveFile),
            Encoding.UTF8.GetBytes(LossCurve.Svg(baseLosses, loraLosses)));
    }
}
