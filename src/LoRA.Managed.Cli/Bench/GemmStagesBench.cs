using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Cli.Bench;

/// <summary>
/// GFLOP/s of each step from the naive loop to the threaded packed GEMM (<see cref="GemmStages"/>), on the
/// MLP's input-gradient product (64×512 · 512×784) and on squares: the table of docs/02-matrix-multiply.md.
/// </summary>
public static class GemmStagesBench
{
    /// <summary>The shapes (M, K, N), all without transposes.</summary>
    public static readonly (int M, int K, int N)[] Shapes = { (64, 512, 784), (256, 256, 256), (512, 512, 512) };

    /// <summary>A markdown table: one row per stage, one column per shape; the last row is <see cref="Gemm"/> on
    /// <paramref name="threads"/> threads.</summary>
    public static string Table(int threads = 2, double seconds = 0.3)
    {
        QuickBench.WarmUp();
        var rows = Enum.GetValues<GemmStages.Stage>().Where(GemmStages.IsSupported)
            .Select(s => (Name: s.ToString(),
                Run: (Action<float[], float[], float[], int, int, int>)((a, b, c, m, k, n) =>
                    GemmStages.Multiply(s, m, n, k, a, b, c))))
            .Append(($"Gemm.Multiply, {threads} threads", (a, b, c, m, k, n) =>
            {
                using (ComputeThreads.Use(threads)) Gemm.Multiply(false, false, m, n, k, 1f, a, k, b, n, 0f, c, n);
            }))
            .ToList();
        var sb = new System.Text.StringBuilder();
        sb.AppendLine("| stage | " + string.Join(" | ", Shapes.Select(s => $"{s.M}×{s.K}·{s.K}×{s.N}")) + " |");
        sb.AppendLine("|---|" + string.Concat(Shapes.Select(_ => "---:|")));
        var results = rows.Select(_ => new double[Shapes.Length]).ToArray();
        for (int si = 0; si < Shapes.Length; si++)
        {
            var (m, k, n) = Shapes[si];
            var g = new TorchGenerator(11);
            float[] a = new float[m * k], b = new float[k * n], c = new float[m * n];
            g.FillUniform(a, -1f, 1f);
            g.FillUniform(b, -1f, 1f);
            for (int r = 0; r < rows.Count; r++)
            {
                var run = rows[r].Run;
                results[r][si] = 2.0 * m * n * k / QuickBench.BestSeconds(() => run(a, b, c, m, k, n), seconds) / 1e9;
            }
        }
        for (int r = 0; r < rows.Count; r++)
            sb.AppendLine($"| {rows[r].Name} | " +
                string.Join(" | ", results[r].Select(x => x.ToString(x < 10 ? "F2" : "F1"))) + " |");
        return sb.ToString();
    }
}
