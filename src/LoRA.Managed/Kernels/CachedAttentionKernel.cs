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

    [ThreadStatic] private static Job? t_job;
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
        if (n >= ProductRows && !ProductsDisabled)
        {
            var byHeads = t_headsJob ??= new HeadsJob();
            byHeads.Set(q, keys, values, n, heads, kvHeads, headDim, start, scale);
            try
            {
                ComputePool.Run(byHeads, heads, ComputeThreads.Max);
                byHeads.Output.AsSpan(0, q.Length).CopyTo(output);
            }
            finally { byHeads.Clear(); }
            return;
        }
        var job = t_job ??= new Job();
        // The job reads q and writes out through arrays; copy q into the job's buffer (small: n·H·D).
        job.Set(q, keys, values, n, heads, kvHeads, headDim, start, scale);
        int rows = n * heads, threads = ComputeThreads.Max;
        long work = (long)rows * (start + n) * headDim;
        try
        {
            if (threads == 1 || rows < 2 || work < 1 << 16)
                for (int r = 0; r < rows; r++) job.Execute(r);
            else
                ComputePool.Run(job, rows, threads);
            job.Output.AsSpan(0, q.Length).CopyTo(output);
        }
        finally { job.Clear(); }
    }

    private sealed class Job : ComputeJob
    {
        // Each thread's row of scores, grown once to the longest span it has seen.
        [ThreadStatic] private static float[]? t_scores;
        private float[] _q = [];
        public float[] Output = [];
        private float[]? _k, _v;
        private int _heads, _group, _kvHeads, _d, _start, _span;
        private float _scale;

        public void Set(ReadOnlySpan<float> q, float[] k, float[] v, int n, int heads, int kvHeads, int d, int start,
            float scale)
        {
            if (_q.Length < q.Length) { _q = new float[q.Length]; Output = new float[q.Length]; }
            q.CopyTo(_q);
            _k = k; _v = v; _heads = heads; _kvHeads = kvHeads; _group = heads / kvHeads; _d = d; _start = start;
            _scale = scale;
            _span = start + n;
        }

        public void Clear() { _k = _v = null; }

        public override void Execute(int row)
        {
            int i = row / _heads, h = row % _heads, g = h / _group, d = _d, kvRow = _kvHeads * d;
            int keysSeen = _start + i + 1;
            float[] buffer = t_scores is { } b && b.Length >= _span
                ? b
                : t_scores = new float[Math.Max(256,
                    (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)_span))];
            Span<float> scores = buffer.AsSpan(0, keysSeen);
            ReadOnlySpan<float> q = _q.AsSpan(row * d, d);
            float[] k = _k!, v = _v!;
            for (int j = 0; j < keysSeen; j++) scores[j] = TensorPrimitives.Dot(q, k.AsSpan(j * kvRow + g * d, d));
            // The training path's row softmax (CausalSoftmaxKernel), so cached decoding gives its bits.
            unsafe
            {
                fixed (float* ps = buffer) SoftmaxRow.Forward(ps, ps, keysSeen, _scale);
            }
            Span<float> o = Output.AsSpan(row * d, d);
            o.Clear();
            for (int j = 0; j < keysSeen; j++)
                TensorPrimitives.MultiplyAdd(v.AsSpan(j * kvRow + g * d, d), scores[j], o, o);
        }
    }

    // One part per query head: its scores, softmax and weighted values as two products over the cache.
    private sealed class HeadsJob : ComputeJob
    {
        // Query rows per pair of products: bounds a thread's scratch (64 × span floats, 8 MB at a 32k context) and
        // skips the masked corner of a long chunk. Rows of a block may still multiply a later token's value by a zero
        // weight, as the training path's causal blocks do (CausalSlices).
        private const int BlockRows = 64;

        // Each thread's block of scores, grown once to the largest it has seen.
        [ThreadStatic] private static float[]? t_scores;
        private float[] _q = [];
        public float[] Output = [];
        private float[]? _k, _v;
        private int _n, _heads, _group, _kvHeads, _d, _start, _span;
        private float _scale;

        public void Set(ReadOnlySpan<float> q, float[] k, float[] v, int n, int heads, int kvHeads, int d, int start,
            float scale)
        {
            if (_q.Length < q.Length) { _q = new float[q.Length]; Output = new float[q.Length]; }
            q.CopyTo(_q);
            _k = k; _v = v; _n = n; _heads = heads; _kvHeads = kvHeads; _group = heads / kvHeads; _d = d;
            _start = start; _scale = scale;
            _span = start + n;
        }

        public void Clear() { _k = _v = null; }

        public override unsafe void Execute(int h)
        {
            int d = _d, g = h / _group, qRow = _heads * d, kvRow = _kvHeads * d;
            // Query rows in blocks of BlockRows: block [i0, i1) sees cache rows 0..start + i1, so the scratch is at
            // most BlockRows × span and the masked corner past the block is neither computed nor multiplied.
            int longest = Math.Min(BlockRows, _n) * _span;
            float[] scores = t_scores is { } b && b.Length >= longest ? b : t_scores = new float[longest];
            for (int i0 = 0; i0 < _n; i0 += BlockRows)
            {
                int rows = Math.Min(BlockRows, _n - i0), span = _start + i0 + rows;
                // S = Q_h · K_gᵀ: the block's query rows of head h (stride H·D) against cache rows 0..span of head g.
                Gemm.Multiply(false, true, rows, span, d, 1f, _q.AsSpan((i0 * _heads + h) * d), qRow,
                    _k!.AsSpan(g * d), kvRow, 0f, scores, span);
                // Token i0 + i sees cache rows 0..start + i0 + i; the rest of its row becomes 0.
                fixed (float* ps = scores)
                    for (int i = 0; i < rows; i++)
                        SoftmaxRow.Forward(ps + (long)i * span, ps + (long)i * span, _start + i0 + i + 1, span,
                            _scale);
                // O_h = P · V_g, written into head h's columns of the block's rows of the (n, H, D) output.
                Gemm.Multiply(false, false, rows, d, span, 1f, scores, span, _v!.AsSpan(g * d), kvRow, 0f,
                    Output.AsSpan((i0 * _heads + h) * d), qRow);
            }
        }
    }
}
