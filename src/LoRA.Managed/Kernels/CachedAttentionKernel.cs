using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Kernels;

/// <summary>
/// Causal scaled dot-product attention of new tokens against a key/value cache ("Attention Is All You Need",
/// §3.2.1), with grouped-query attention (Ainslie et al. 2023): query head h reads key/value head
/// <c>h / (H / H_kv)</c>, as Hugging Face's <c>repeat_kv</c>. The n new tokens sit at positions
/// <c>start..start+n−1</c>, their keys and values already written to the cache; token i attends to cache rows
/// <c>0..start+i</c>: <c>out = Σⱼ softmax(s·q·kⱼ)ⱼ·vⱼ</c>. Prefill (start 0, n = prompt) and one-token decode are
/// the same call, so the prefix is never recomputed. <see cref="LlamaKernelsReference.CachedAttention"/> is its twin.
/// </summary>
/// <remarks>
/// q and out are (n, H, D); the caches are (capacity, H_kv, D). The softmax subtracts the row maximum before
/// <c>exp</c> and runs the same row code as <see cref="CausalSoftmaxKernel"/> (<see cref="SoftmaxRow"/>), so a
/// cached step's probabilities have the training path's bits. The (token, head) rows are spread over
/// <see cref="ComputeThreads.Max"/> threads when there is enough work; each row is computed by one thread in
/// one order, so the result does not depend on the thread count.
/// <para>A chunk of at least <see cref="ProductRows"/> new tokens (a prompt's or a scored window's prefill) runs as
/// products instead, head by head: <c>S = Q_h·K_gᵀ</c> with <see cref="Gemm"/>, each row's softmax over its first
/// <c>start + i + 1</c> entries and zeros after them, then <c>O_h = P·V_g</c>, in blocks of 64 query rows, each block
/// over the cache rows its last token sees. Row by row, each of the n·H·span scores is a 64-long dot product of its
/// own call: SmolLM2-135M's attention over a 256-token window took 127–134 ms of one thread that way and 20 ms as
/// products (<c>--scoring</c>, docs/07). Heads are spread over the threads, each head's products run by one thread;
/// <see cref="Gemm"/>'s bits do not depend on how it is split, so neither do these. The two paths sum the dot products
/// in different orders: a token's output can differ in the last bits between a chunk of 16 or more and a shorter
/// one.</para>
/// </remarks>
public static class CachedAttentionKernel
{
    /// <summary>New tokens from which a call runs as products (<see cref="Gemm"/>) rather than row by row.</summary>
    public const int ProductRows = 16;

    /// <summary>For benchmarks and tests: every call row by row, as before the products (docs/07).</summary>
    internal static bool ProductsDisabled;

    [ThreadStatic] private static RowsJob? t_job;
    [ThreadStatic] private static HeadsJob? t_headsJob;

    /// <summary>Writes out (n, H, D).</summary>
    /// <exception cref="ArgumentException">A span does not fit the shape, or H is not a multiple of H_kv.</exception>
    public static void Forward(ReadOnlySpan<float> q, float[] keys, float[] values, Span<float> output,
        int n, int heads, int kvHeads, int headDim, int start, float scale)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(values);
        long rowsNeeded = (long)(start + n) * kvHeads * headDim;
        if (n < 0 || start < 0 || heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0 || headDim <= 0
            || q.Length != (long)n * heads * headDim || output.Length != q.Length
            || keys.Length < rowsNeeded || values.Length < rowsNeeded)
            throw new ArgumentException($"CachedAttentionKernel: q {q.Length}, out {output.Length}, caches " +
                $"{keys.Length}/{values.Length} do not fit " +
                $"n {n}, heads {heads}, kv heads {kvHeads}, head size {headDim}, start {start}.");
        bool products = n >= ProductRows && !ProductsDisabled;
        CacheJob job = products ? t_headsJob ??= new HeadsJob() : t_job ??= new RowsJob();
        // The job reads q and writes out through arrays; copy q into the job's buffer (small: n·H·D).
        job.Set(q, keys, values, n, heads, kvHeads, headDim, start, scale);
        // Products: a part per query head. Rows: a part per (token, head) row, on this thread below 2¹⁶ multiply-adds.
        int rows = n * heads;
        bool split = products || (long)rows * (start + n) * headDim >= 1 << 16;
        try
        {
            ComputePool.Run(job, products ? heads : rows, split ? ComputeThreads.Max : 1);
            job.Output.AsSpan(0, q.Length).CopyTo(output);
        }
        finally { job.Clear(); }
    }

    // What both ways of running a call share: q copied in, the output, the caches and the shape.
    private abstract class CacheJob : ComputeJob
    {
        protected float[] Q = [];
        public float[] Output = [];
        protected float[]? K, V;
        protected int N, Heads, Group, KvHeads, D, Start, CacheRows;   // CacheRows: start + n
        protected float Scale;

        public void Set(ReadOnlySpan<float> q, float[] k, float[] v, int n, int heads, int kvHeads, int d, int start,
            float scale)
        {
            if (Q.Length < q.Length) { Q = new float[q.Length]; Output = new float[q.Length]; }
            q.CopyTo(Q);
            K = k; V = v; N = n; Heads = heads; KvHeads = kvHeads; Group = heads / kvHeads; D = d; Start = start;
            Scale = scale;
            CacheRows = start + n;
        }

        public void Clear() { K = V = null; }
    }

    // A part per (token, head) row: its scores one dot product each, for one new token (decoding).
    private sealed class RowsJob : CacheJob
    {
        // Each thread's row of scores, grown once to the longest span it has seen.
        [ThreadStatic] private static float[]? t_scores;

        public override void Execute(int row)
        {
            int i = row / Heads, h = row % Heads, g = h / Group, d = D, kvRow = KvHeads * d;
            int keysSeen = Start + i + 1;
            float[] buffer = t_scores is { } b && b.Length >= CacheRows
                ? b
                : t_scores = new float[Math.Max(256,
                    (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)CacheRows))];
            Span<float> scores = buffer.AsSpan(0, keysSeen);
            ReadOnlySpan<float> q = Q.AsSpan(row * d, d);
            float[] k = K!, v = V!;
            for (int j = 0; j < keysSeen; j++) scores[j] = TensorPrimitives.Dot(q, k.AsSpan(j * kvRow + g * d, d));
            // The training path's row softmax (CausalSoftmaxKernel), so cached decoding gives its bits.
            unsafe
            {
                fixed (float* ps = buffer) SoftmaxRow.Forward(ps, ps, keysSeen, Scale);
            }
            Span<float> o = Output.AsSpan(row * d, d);
            o.Clear();
            for (int j = 0; j < keysSeen; j++)
                TensorPrimitives.MultiplyAdd(v.AsSpan(j * kvRow + g * d, d), scores[j], o, o);
        }
    }

    // One part per query head: its scores, softmax and weighted values as two products over the cache.
    private sealed class HeadsJob : CacheJob
    {
        // Query rows per pair of products: bounds a thread's scratch (64 × span floats, 8 MB at a 32k context) and
        // skips the masked corner of a long chunk. Rows of a block may still multiply a later token's value by a zero
        // weight, as the training path's causal blocks do (CausalSlices).
        private const int BlockRows = 64;

        // Each thread's block of scores, grown once to the largest it has seen.
        [ThreadStatic] private static float[]? t_scores;

        public override unsafe void Execute(int h)
        {
            int d = D, g = h / Group, qRow = Heads * d, kvRow = KvHeads * d;
            // Query rows in blocks of BlockRows: block [i0, i1) sees cache rows 0..start + i1, so the scratch is at
            // most BlockRows × span and the masked corner past the block is neither computed nor multiplied.
            int longest = Math.Min(BlockRows, N) * CacheRows;
            float[] scores = t_scores is { } b && b.Length >= longest ? b : t_scores = new float[longest];
            for (int i0 = 0; i0 < N; i0 += BlockRows)
            {
                int rows = Math.Min(BlockRows, N - i0), span = Start + i0 + rows;
                // S = Q_h · K_gᵀ: the block's query rows of head h (stride H·D) against cache rows 0..span of head g.
                Gemm.Multiply(false, true, rows, span, d, 1f, Q.AsSpan((i0 * Heads + h) * d), qRow,
                    K!.AsSpan(g * d), kvRow, 0f, scores, span);
                // Token i0 + i sees cache rows 0..start + i0 + i; the rest of its row becomes 0.
                fixed (float* ps = scores)
                    for (int i = 0; i < rows; i++)
                        SoftmaxRow.Forward(ps + (long)i * span, ps + (long)i * span, Start + i0 + i + 1, span,
                            Scale);
                // O_h = P · V_g, written into head h's columns of the block's rows of the (n, H, D) output.
                Gemm.Multiply(false, false, rows, d, span, 1f, scores, span, V!.AsSpan(g * d), kvRow, 0f,
                    Output.AsSpan((i0 * Heads + h) * d), qRow);
            }
        }
    }
}
