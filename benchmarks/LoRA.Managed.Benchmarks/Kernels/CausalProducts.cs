using System.Diagnostics;
using System.Text;
using LoRA.Managed.Autograd;
using LoRA.Managed.Autograd.Ops;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Benchmarks.Kernels;

/// <summary>
/// <c>--causal</c>: attention's products over the causal triangle (<see cref="CausalSlices"/>) against the full
/// products, alternated in one process, best of N, on one thread: the lm-demo GPT step's attention (B 32, 4 heads,
/// T 64, hs 16: scores, causal softmax, P·V, forward and backward) and the whole GPT step, at 16- and 32-row blocks.
/// </summary>
internal static class CausalProducts
{
    public static string Table(double seconds = 12)
    {
        var sb = new StringBuilder();
        using var scope = ComputeThreads.Use(1);
        foreach (var (name, run) in new (string, Action)[]
                 {
                     ("attention products (32x4 heads, T 64, hs 16)", Attention(32, 64)),
                     ("attention products (8x4 heads, T 128, hs 16)", Attention(8, 128)),
                     ("attention products (2x4 heads, T 256, hs 16)", Attention(2, 256)),
                     ("lm-demo GPT step", LoRA.Managed.Cli.Bench.QuickBench.CreateGptTrainStep()),
                 })
        {
            // Variants: full products; causal, 16-row blocks; causal, 32-row blocks.
            (bool full, int rows)[] variants = [(true, 32), (false, 16), (false, 32)];
            var best = Enumerable.Repeat(double.MaxValue, variants.Length).ToArray();
            for (int w = 0; w < 10; w++) foreach (var v in variants) { Set(v); run(); }
            long start = Stopwatch.GetTimestamp();
            for (int rep = 0; rep < 10 || Stopwatch.GetElapsedTime(start).TotalSeconds < seconds / 2; rep++)
                for (int i = 0; i < variants.Length; i++)
                {
                    Set(variants[i]);
                    run();
                    long t0 = Stopwatch.GetTimestamp();
                    run();
                    best[i] = Math.Min(best[i], Stopwatch.GetElapsedTime(t0).TotalSeconds);
                }
            CausalSlices.FullProducts = false;
            CausalSlices.BlockRows = 16;
            CausalSlices.ColumnBlockRows = 32;
            sb.AppendLine($"{name}, 1 thread, best µs: full {best[0] * 1e6:F0}, causal/16 {best[1] * 1e6:F0} " +
                $"({best[0] / best[1]:F3}x), causal/32 {best[2] * 1e6:F0} ({best[0] / best[2]:F3}x)");
        }
        return sb.ToString();
    }

    /// <summary><c>--causal --products</c>: each of the six products alone over 8192 rows of slices (T, hs 16), full
    /// GEMM vs <see cref="CausalSlices"/> at 16- and 32-row blocks.</summary>
    public static string Products(int t, double seconds = 2)
    {
        const int hs = 16;
        int slices = 128 * 64 / t;
        var g = new TorchGenerator(4);
        float[] q = new float[slices * t * hs], k = new float[q.Length], dy = new float[q.Length],
            s = new float[slices * t * t], outS = new float[s.Length], outH = new float[q.Length];
        g.FillUniform(q, -1f, 1f); g.FillUniform(k, -1f, 1f); g.FillUniform(dy, -1f, 1f); g.FillUniform(s, -1f, 1f);
        (string, Action<int, bool>)[] products =
        [
            ("S = q·kᵀ", (x, c) =>
            {
                if (c) CausalSlices.LowerTimesTransposed(q.AsSpan(x * t * hs), hs, k.AsSpan(x * t * hs), hs, 0f,
                    outS.AsSpan(x * t * t, t * t), t, hs);
                else Gemm.Multiply(false, true, t, t, hs, 1f, q.AsSpan(x * t * hs), hs, k.AsSpan(x * t * hs), hs, 0f,
                    outS.AsSpan(x * t * t, t * t), t);
            }),
            ("y = P·v", (x, c) =>
            {
                if (c) CausalSlices.LowerTimes(s.AsSpan(x * t * t), k.AsSpan(x * t * hs), hs, 0f,
                    outH.AsSpan(x * t * hs, t * hs), hs, t, hs);
                else Gemm.Multiply(false, false, t, hs, t, 1f, s.AsSpan(x * t * t), t, k.AsSpan(x * t * hs), hs, 0f,
                    outH.AsSpan(x * t * hs, t * hs), hs);
            }),
            ("dP = dy·vᵀ", (x, c) =>
            {
                if (c) CausalSlices.LowerTimesTransposed(dy.AsSpan(x * t * hs), hs, k.AsSpan(x * t * hs), hs, 0f,
                    outS.AsSpan(x * t * t, t * t), t, hs);
                else Gemm.Multiply(false, true, t, t, hs, 1f, dy.AsSpan(x * t * hs), hs, k.AsSpan(x * t * hs), hs,
                    0f, outS.AsSpan(x * t * t, t * t), t);
            }),
            ("dv = Pᵀ·dy", (x, c) =>
            {
                if (c) CausalSlices.LowerTransposedTimes(s.AsSpan(x * t * t), dy.AsSpan(x * t * hs), hs, 0f,
                    outH.AsSpan(x * t * hs, t * hs), hs, t, hs);
                else Gemm.Multiply(true, false, t, hs, t, 1f, s.AsSpan(x * t * t), t, dy.AsSpan(x * t * hs), hs, 0f,
                    outH.AsSpan(x * t * hs, t * hs), hs);
            }),
        ];
        var sb = new StringBuilder();
        using var scope = ComputeThreads.Use(1);
        foreach (var (name, product) in products)
        {
            (bool causal, int rows)[] variants = [(false, 32), (true, 16), (true, 32)];
            var best = Enumerable.Repeat(double.MaxValue, variants.Length).ToArray();
            long start = Stopwatch.GetTimestamp();
            for (int rep = 0; rep < 10 || Stopwatch.GetElapsedTime(start).TotalSeconds < seconds; rep++)
                for (int i = 0; i < variants.Length; i++)
                {
                    CausalSlices.BlockRows = CausalSlices.ColumnBlockRows = variants[i].rows;
                    long t0 = Stopwatch.GetTimestamp();
                    for (int x = 0; x < slices; x++) product(x, variants[i].causal);
                    best[i] = Math.Min(best[i], Stopwatch.GetElapsedTime(t0).TotalSeconds);
                }
            CausalSlices.BlockRows = 16;
            CausalSlices.ColumnBlockRows = 32;
            sb.AppendLine($"T {t}: {name} x{slices}: full {best[0] * 1e6:F1} µs, causal/16 {best[1] * 1e6:F1} " +
                $"({best[0] / best[1]:F3}x), causal/32 {best[2] * 1e6:F1} ({best[0] / best[2]:F3}x)");
        }
        return sb.ToString();
    }

    private static void Set((bool full, int rows) v)
    {
        CausalSlices.FullProducts = v.full;
        CausalSlices.BlockRows = v.rows; // column-cut blocks stay at 32 rows
    }

    private static Action Attention(int batch, int t)
    {
        var g = new TorchGenerator(3);
        Tensor Make(params int[] shape)
        {
            var t = new Tensor(shape) { RequiresGrad = true };
            g.FillUniform(t.Data, -1f, 1f);
            return t;
        }
        var q0 = Make(batch, 4, t, 16);
        var k0 = Make(batch, 4, t, 16);
        var v0 = Make(batch, 4, t, 16);
        float[] seed = new float[batch * 4 * t * 16];
        g.FillUniform(seed, -1f, 1f);
        var arena = new TensorArena();
        return () =>
        {
            using var scope = arena.Activate();
            var q = Functional.Scale(q0, 1f);
            var k = Functional.Scale(k0, 1f);
            var v = Functional.Scale(v0, 1f);
            var att = Functional.CausalSoftmax(Functional.CausalBatchedMatMul(q, k, transposeB: true), 0.25f, true);
            var y = Functional.CausalBatchedMatMul(att, v);
            Tape.Current.Backward(y, seed);
        };
    }
}
