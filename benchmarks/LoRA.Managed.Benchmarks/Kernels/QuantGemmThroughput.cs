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

    /// <summary>
    /// A table of GFLOP/s and the ratio to float32, forward and input gradient, at the given threads. Each product is
    /// timed in <paramref name="rounds"/> short bursts interleaved with the others (f32, then each format, round after
    /// round) and keeps its best: on a shared machine a neighbour's burst then hits the float and the quantised
    /// products alike instead of whichever happened to run during it.
    /// </summary>
    public static string Table(int threads, int rows = 256, double seconds = 0.3, int rounds = 6)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"threads {threads}, {rows} rows");
        sb.AppendLine("| layer (out×in) | product | f32 GFLOP/s | " +
            string.Join(" | ", Formats.Select(f => $"{f} (× f32)")) + " |");
        sb.AppendLine("|---|---|---:|" + string.Concat(Formats.Select(_ => "---:|")));
        using var scope = ComputeThreads.Use(threads);
        var g = new TorchGenerator(5);
        foreach (var (outF, inF, name) in Layers)
        {
            float[] w = new float[outF * inF], x = new float[rows * inF], y = new float[rows * outF],
                dy = new float[rows * outF], dx = new float[rows * inF];
            g.FillUniform(w, -0.05f, 0.05f);
            g.FillUniform(x, -1f, 1f);
            g.FillUniform(dy, -1f, 1f);
            double flops = 2.0 * rows * inF * outF;
            // Forward products at even indices, input gradients at odd ones: f32 first, then each format.
            var runs = new List<Action>
            {
                () => Gemm.Multiply(false, true, rows, outF, inF, 1f, x, inF, w, inF, 0f, y, outF),
                () => Gemm.Multiply(false, false, rows, inF, outF, 1f, dy, outF, w, inF, 1f, dx, inF),
            };
            foreach (BaseDType d in Formats)
            {
                var q = QuantizedMatrix.Quantize(w, outF, inF, d);
                runs.Add(() => QuantizedGemm.MultiplyTransposed(q, rows, x, y));
                runs.Add(() => QuantizedGemm.MultiplyAccumulate(q, rows, dy, dx));
            }
            double[] best = Enumerable.Repeat(double.MaxValue, runs.Count).ToArray();
            for (int round = 0; round < rounds; round++)
                for (int i = 0; i < runs.Count; i++)
                    best[i] = Math.Min(best[i], QuickBench.BestSeconds(runs[i], seconds / rounds, minReps: 2));
            string Cells(int first) => string.Join(" | ", Enumerable.Range(0, Formats.Length)
                .Select(f => best[first + 2 + 2 * f]).Select(t => $"{flops / t / 1e9:F0} ({best[first] / t:F2})"));
            sb.AppendLine($"| {name} ({outF}×{inF}) | y = x·Wᵀ | {flops / best[0] / 1e9:F0} | {Cells(0)} |");
            sb.AppendLine($"| {name} ({outF}×{inF}) | dx += dy·W | {flops / best[1] / 1e9:F0} | {Cells(1)} |");
        }
        return sb.ToString();
    }

    private static readonly BaseDType[] Formats = [BaseDType.Bf16, BaseDType.F16, BaseDType.Int8, BaseDType.Nf4];
}
