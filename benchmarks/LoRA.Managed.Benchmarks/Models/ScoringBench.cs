using System.Diagnostics;
using System.Text;
using LoRA.Managed.Kernels;
using LoRA.Managed.Models;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Benchmarks;

/// <summary>
/// Question: what do scoring's two kernels cost, before and after they were rewritten? <c>--scoring [--threads
/// 1,2]</c> times, in one process with the variants alternated, (1) the cached attention of a SmolLM2-135M-shaped model
/// (30 layers, 9 query and 3 key/value heads of 64) over a 256-token window in chunks of 64 and of 128 tokens, row by
/// row (<see cref="CachedAttentionKernel.ProductsDisabled"/>) and as products; (2) the loss over 256 rows of a
/// 49,152-token vocabulary, with the scalar double loop scoring used before and with <see cref="LmScoring.NllSum"/>
/// (the training loss's kernel); (3) a decoded token's products over the same model's 30 layers, x·Wᵀ and x·W, on the
/// calling thread's tiles as before and split by columns over the threads (<see cref="Gemm.NarrowSplitDisabled"/>),
/// x·W also through <see cref="GemvKernel"/>. Best milliseconds of the rounds after a warm-up; docs/07-performance.md,
/// "Scoring and a prompt's prefill" and "Decoding on both cores".
/// </summary>
public static class ScoringBench
{
    private const string Split = "split by columns", GemvAndSplit = "`GemvKernel` and split by columns";

    private static double _sink;   // the losses go somewhere, so no call can be dropped

    private const int Layers = 30, Heads = 9, KvHeads = 3, HeadDim = 64, Window = 256, Vocab = 49152, Rounds = 10;

    /// <summary>The markdown table.</summary>
    public static string Table(int[] threadCounts)
    {
        var g = new TorchGenerator(11);
        float[] keys = new float[Window * KvHeads * HeadDim], values = new float[keys.Length];
        float[] q = new float[128 * Heads * HeadDim], o = new float[q.Length];
        g.FillNormal(keys);
        g.FillNormal(values);
        g.FillNormal(q);
        float[] logits = new float[Window * Vocab], scratch = new float[logits.Length];
        g.FillNormal(logits, 0f, 2f);
        int[] targets = Enumerable.Range(0, Window).Select(_ => g.NextInt(Vocab)).ToArray();

        var cases = new List<(string Name, Action Run)>();
        foreach (int chunk in new[] { 64, 128 })
            foreach (bool rows in new[] { true, false })
                cases.Add(($"attention, chunks of {chunk}, {(rows ? "row by row" : "products")}", () =>
                {
                    CachedAttentionKernel.ProductsDisabled = rows;
                    try
                    {
                        for (int layer = 0; layer < Layers; layer++)
                            for (int c0 = 0; c0 < Window; c0 += chunk)
                                CachedAttentionKernel.Forward(q.AsSpan(0, chunk * Heads * HeadDim), keys, values,
                                    o.AsSpan(0, chunk * Heads * HeadDim), chunk, Heads, KvHeads, HeadDim, c0,
                                    0.125f);
                    }
                    finally { CachedAttentionKernel.ProductsDisabled = false; }
                }));
        cases.Add(("loss, scalar double loop (before)", () => _sink += ScalarLoss(logits, targets)));
        cases.Add(("loss, LmScoring.NllSum", () =>
        {
            logits.CopyTo(scratch);   // NllSum overwrites its logits; the copy is timed too
            _sink += LmScoring.NllSum(scratch, targets, Vocab);
        }));

        // A decoded token's products: 30 layers of the 7 projections (425 MB of weights, so from memory), as x·Wᵀ
        // (a Linear's weight, out × in) and as x·W (GPT-2's Conv1D layout, in × out).
        (int N, int K)[] projections = [(576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576),
            (576, 1536)];
        var weights = new List<float[]>();
        for (int l = 0; l < Layers; l++)
            foreach (var (n, k) in projections)
            {
                var w = new float[n * k];
                g.FillNormal(w, 0f, 0.02f);
                weights.Add(w);
            }
        float[] token = new float[1536], outputs = new float[1536];
        g.FillNormal(token);
        foreach (bool transposed in new[] { true, false })
            foreach (string variant in new[] { "one thread's tiles (before)", Split, GemvAndSplit })
            {
                if (!transposed && variant == Split) continue;   // x·W: both changes together
                if (transposed && variant == GemvAndSplit) continue;   // GemvKernel takes x·W only
                bool split = variant != "one thread's tiles (before)", gemv = variant == GemvAndSplit;
                cases.Add(($"decoding, {(transposed ? "x·Wᵀ" : "x·W")}, {variant}", () =>
                {
                    Gemm.NarrowSplitDisabled = !split;
                    GemvKernel.Disabled = !gemv;
                    try
                    {
                        int i = 0;
                        for (int l = 0; l < Layers; l++)
                            foreach (var (n, k) in projections)
                                Gemm.Multiply(false, transposed, 1, n, k, 1f, token.AsSpan(0, k), k, weights[i++],
                                    transposed ? k : n, 0f, outputs.AsSpan(0, n), n);
                    }
                    finally { Gemm.NarrowSplitDisabled = false; GemvKernel.Disabled = false; }
                }));
            }

        var best = new double[cases.Count, threadCounts.Length];
        for (int i = 0; i < best.Length; i++) best[i / threadCounts.Length, i % threadCounts.Length] = double.MaxValue;
        for (int round = 0; round < Rounds + 3; round++)          // the first rounds warm the JIT up, untimed
            for (int c = 0; c < cases.Count; c++)
                for (int t = 0; t < threadCounts.Length; t++)
                    using (ComputeThreads.Use(threadCounts[t]))
                    {
                        cases[c].Run();   // untimed: each timed call follows its own case, not the previous one
                        long t0 = Stopwatch.GetTimestamp();
                        cases[c].Run();
                        double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                        if (round >= 3) best[c, t] = Math.Min(best[c, t], ms);
                    }
        var sb = new StringBuilder("| SmolLM2-135M's shapes | " +
            string.Join(" | ", threadCounts.Select(t => $"ms, {t} thread{(t > 1 ? "s" : "")}")) + " |\n|---|" +
            string.Concat(threadCounts.Select(_ => "---:|")) + "\n");
        for (int c = 0; c < cases.Count; c++)
            sb.AppendLine($"| {cases[c].Name} | " +
                string.Join(" | ", Enumerable.Range(0, threadCounts.Length).Select(t => best[c, t].ToString("F2"))) +
                " |");
        return sb.ToString();
    }

    // What LmScoring did before NllSum: each row's −log p in double, one Math.Exp per logit, on the calling thread.
    private static double ScalarLoss(float[] logits, int[] targets)
    {
        double total = 0;
        for (int r = 0; r < targets.Length; r++)
        {
            ReadOnlySpan<float> row = logits.AsSpan(r * Vocab, Vocab);
            float max = System.Numerics.Tensors.TensorPrimitives.Max(row);
            double sum = 0;
            foreach (float l in row) sum += Math.Exp(l - (double)max);
            total += Math.Log(sum) + max - row[targets[r]];
        }
        return total;
    }
}
