using System.Text;
using LoRA.Managed.Cli.Bench;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Benchmarks.Kernels;

/// <summary>
/// The quantised base's training-shape products against the float GEMM: <c>y = x·Wᵀ</c> and <c>dx += dy·W</c> through
/// <see cref="QuantizedGemm"/> (W expanded into the GEMM's packed panels) for each storage format, beside
/// <see cref="Gemm.Multiply"/> on the float W, on GPT-2-small's shapes at 256 rows (batch 2 × context 128) unless told
/// otherwise. Best of repetitions.
/// </summary>
public static class QuantGemmThroughput
{
    private static readonly (int Out, int In, string Name)[] Layers =
        [(2304, 768, "c_attn"), (768, 768, "attn c_proj"), (3072, 768, "c_fc"), (768, 3072, "mlp c_proj")];

    /// <summary>A table of GFLOP/s and the ratio to float32, forward and input gradient, at the given threads.</summary>
    public static string Table(int threads, int rows = 256, double seconds = 0.3)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"threads {threads}, {rows} rows");
        sb.AppendLine("| layer (out×in) | product | f32 GFLOP/s | " + string.Join(" | ", Formats.Select(f => $"{f} (× f32)")) + " |");
        sb.AppendLine("|---|---|---:|" + string.Concat(Formats.Select(_ => "---:|")));
        using var scope = ComputeThreads.Use(threads);
        var g = new TorchGenerator(5);
        foreach (var (outF, inF, name) in Layers)
        {
            float[] w = new float[outF * inF], x = new float[rows * inF], y = new float[rows * outF], dy = new float[rows * outF], dx = new float[rows * inF];
            g.FillUniform(w, -0.05f, 0.05f);
            g.FillUniform(x, -1f, 1f);
            g.FillUniform(dy, -1f, 1f);
            double flops = 2.0 * rows * inF * outF;
            double f32Fwd = QuickBench.BestSeconds(() => Gemm.Multiply(false, true, rows, outF, inF, 1f, x, inF, w, inF, 0f, y, outF), seconds);
            double f32Bwd = QuickBench.BestSeconds(() => Gemm.Multiply(false, false, rows, inF, outF, 1f, dy, outF, w, inF, 1f, dx, inF), seconds);
            var fwd = new List<string>();
            var bwd = new List<string>();
            foreach (BaseDType d in Formats)
            {
                var q = QuantizedMatrix.Quantize(w, outF, inF, d);
                double tf = QuickBench.BestSeconds(() => QuantizedGemm.MultiplyTransposed(q, rows, x, y), seconds);
                double tb = QuickBench.BestSeconds(() => QuantizedGemm.MultiplyAccumulate(q, rows, dy, dx), seconds);
                fwd.Add($"{flops / tf / 1e9:F0} ({f32Fwd / tf:F2})");
                bwd.Add($"{flops / tb / 1e9:F0} ({f32Bwd / tb:F2})");
            }
            sb.AppendLine($"| {name} ({outF}×{inF}) | y = x·Wᵀ | {flops / f32Fwd / 1e9:F0} | " + string.Join(" | ", fwd) + " |");
            sb.AppendLine($"| {name} ({outF}×{inF}) | dx += dy·W | {flops / f32Bwd / 1e9:F0} | " + string.Join(" | ", bwd) + " |");
        }
        return sb.ToString();
    }

    private static readonly BaseDType[] Formats = [BaseDType.Bf16, BaseDType.F16, BaseDType.Int8, BaseDType.Nf4];
}
