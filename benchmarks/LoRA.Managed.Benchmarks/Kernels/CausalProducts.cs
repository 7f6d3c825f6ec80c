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
            Set((false, 32));
            sb.AppendLine($"{name}, 1 thread, best µs: full {best[0] * 1e6:F0}, causal/16 {best[1] * 1e6:F0} " +
                $"({best[0] / best[1]:F3}x), causal/32 {best[2] * 1e6:F0} ({best[0] / best[2]:F3}x)");
        }
        return sb.ToString();
    }

    private static void Set((bool full, int rows) v)
    {
        BatchedMatMulOp.CausalDisabled = v.full;
        CausalSlices.BlockRows = v.rows;
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
