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
/// </remarks>
public static class CachedAttentionKernel
{
    [ThreadStatic] private static Job? t_job;

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
}
