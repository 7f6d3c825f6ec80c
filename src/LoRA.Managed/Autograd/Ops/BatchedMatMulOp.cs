using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// Batched <c>C[s] = op(A[s])·op(B[s])</c> over the leading dimensions (<c>torch.matmul</c> on (…, M, K) and
/// (…, K, N), without broadcasting), as attention needs for <c>Q·Kᵀ</c> and <c>P·V</c> per head. Each slice is one
/// <see cref="Gemm.Multiply"/> call on a span slice; the transposes are GEMM flags, never copies. Backward per
/// slice, as <see cref="MatMulOp"/>: <c>∂op(A) = ∂C·op(B)ᵀ</c>, <c>∂op(B) = op(A)ᵀ·∂C</c>.
/// </summary>
/// <remarks>
/// Attention's slices are small (T×T×hs), below <see cref="Gemm.ParallelThreshold"/>, so GEMM would run each on
/// one thread; when the whole batch is large enough the slices are spread over <see cref="ComputeThreads.Max"/>
/// threads instead, in runs of consecutive slices (two per thread). Each slice is still computed by one thread in one
/// order, so results do not depend on it.
/// <para>With <c>causal</c> (attention's <c>tril(Q·Kᵀ)</c> and <c>P·V</c> with P lower triangular) each slice is
/// computed over its unmasked triangle only, in row blocks (<see cref="CausalSlices"/>).</para>
/// </remarks>
internal sealed class BatchedMatMulOp : Op
{
    private Tensor _a = null!, _b = null!;
    private bool _ta, _tb, _causal;
    private int _batch, _m, _n, _k;

    public override string Name => "bmm";

    public static Tensor Apply(Tensor a, Tensor b, bool transA, bool transB, bool causal = false)
    {
        if (a.Rank < 2 || a.Rank != b.Rank
            || !a.Shape.AsSpan(0, a.Rank - 2).SequenceEqual(b.Shape.AsSpan(0, b.Rank - 2)))
            throw new ArgumentException($"bmm: A {Shapes.Format(a.Shape)} and B {Shapes.Format(b.Shape)} must have " +
                "the same rank (≥ 2) and the same leading dimensions.");
        int ra = a.Shape[^2], ca = a.Shape[^1], rb = b.Shape[^2], cb = b.Shape[^1];
        int m = transA ? ca : ra, k = transA ? ra : ca, kb = transB ? cb : rb, n = transB ? rb : cb;
        if (k != kb)
            throw new ArgumentException("bmm: inner dimensions differ: A " +
                $"{Shapes.Format(a.Shape)}{(transA ? "ᵀ" : "")} and B {Shapes.Format(b.Shape)}{(transB ? "ᵀ" : "")}.");
        if (causal && (transA || (transB ? m != n : m != k)))
            throw new ArgumentException("bmm: causal products are tril(A·Bᵀ) with a square result or A·B with a " +
                $"square A, got A {Shapes.Format(a.Shape)}{(transA ? "ᵀ" : "")} and B {Shapes.Format(b.Shape)}" +
                $"{(transB ? "ᵀ" : "")}.");
        int batch = 1;
        for (int d = 0; d < a.Rank - 2; d++) batch *= a.Shape[d];
        Span<int> shape = stackalloc int[a.Rank];
        a.Shape.CopyTo(shape);
        shape[^2] = m;
        shape[^1] = n;
        Tensor c = Tape.NewTensor(shape); // every slice is written with β = 0, so stale arena contents are never read
        var job = t_job ??= new SliceJob();
        job.Forward(a.Array, b.Array, c.Array, transA, transB, m, n, k, lda: ca, ldb: cb, causal);
        Run(job, batch, (long)m * n * k);
        if (Tape.ShouldRecord(a, b))
        {
            var op = Tape.Record<BatchedMatMulOp>(c);
            op._a = a; op._b = b; op._ta = transA; op._tb = transB; op._causal = causal;
            op._batch = batch; op._m = m; op._n = n; op._k = k;
        }
        return c;
    }

    public override void Backward()
    {
        // Each input's gradient written (β = 0) or added to (β = 1): Op.GradBetas.
        var (da, betaA, db, betaB) = GradBetas(_a, _b);
        var job = t_job ??= new SliceJob();
        job.Backward(_a.Array, _b.Array, Output.EnsureGrad(), da, db, betaA, betaB, _ta, _tb, _m, _n, _k,
            lda: _a.Shape[^1], ldb: _b.Shape[^1], _causal);
        Run(job, _batch, 2L * _m * _n * _k);
    }

    [ThreadStatic] private static SliceJob? t_job;

    /// <summary>Runs every slice of <paramref name="job"/> (<see cref="SlicedJob.Run"/>), then drops its array
    /// references.</summary>
    private static void Run(SliceJob job, int batch, long workPerSlice)
    {
        try { SlicedJob.Run(job, batch, workPerSlice); }
        finally { job.Clear(); }
    }

    /// <summary>
    /// Part p is the slices from p·per to (p + 1)·per − 1; slice s is one <see cref="Gemm.Multiply"/> (forward) or one
    /// per input gradient (backward), on one thread, writing only slice s of its outputs, so the split never changes
    /// a bit. Reused per thread, so a step allocates nothing.
    /// </summary>
    private sealed class SliceJob : SlicedJob
    {
        private float[]? _a, _b, _c, _da, _db;
        private bool _backward, _ta, _tb, _causal;
        private int _m, _n, _k, _lda, _ldb;
        private float _betaA, _betaB;

        protected override bool RowBlocks => _causal && !CausalSlices.FullProducts;

        public void Forward(float[] a, float[] b, float[] c, bool ta, bool tb, int m, int n, int k, int lda, int ldb,
            bool causal)
        {
            _backward = false;
            _causal = causal;
            _a = a; _b = b; _c = c; _ta = ta; _tb = tb; _m = m; _n = n; _k = k; _lda = lda; _ldb = ldb;
        }

        /// <summary><paramref name="dc"/> is ∂C; <paramref name="da"/>/<paramref name="db"/> are null when that input
        /// needs no gradient.</summary>
        public void Backward(float[] a, float[] b, float[] dc, float[]? da, float[]? db, float betaA, float betaB,
            bool ta, bool tb, int m, int n, int k, int lda, int ldb, bool causal)
        {
            _backward = true;
            _causal = causal;
            _betaA = betaA; _betaB = betaB;
            _a = a; _b = b; _c = dc; _da = da; _db = db; _ta = ta; _tb = tb; _m = m; _n = n; _k = k; _lda = lda;
            _ldb = ldb;
        }

        public void Clear() { _a = _b = _c = _da = _db = null; }

        public override void ExecuteSlice(int s)
        {
            int m = _m, n = _n, k = _k, lda = _lda, ldb = _ldb, sa = m * k, sb = k * n, sc = m * n;
            ReadOnlySpan<float> a = _a!.AsSpan(s * sa, sa), b = _b!.AsSpan(s * sb, sb);
            if (_causal)
            {
                ExecuteCausal(a, b, s);
                return;
            }
            if (!_backward)
            {
                Gemm.Multiply(_ta, _tb, m, n, k, 1f, a, lda, b, ldb, 0f, _c!.AsSpan(s * sc, sc), n);
                return;
            }
            // ∂op(A) = ∂C·op(B)ᵀ and ∂op(B) = op(A)ᵀ·∂C, written (β = 0) or accumulated (β = 1) into the inputs'
            // gradients.
            ReadOnlySpan<float> dcs = _c!.AsSpan(s * sc, sc);
            bool ta = _ta, tb = _tb;
            if (_da is not null)
            {
                Span<float> g = _da.AsSpan(s * sa, sa);
                if (!ta) Gemm.Multiply(false, !tb, m, k, n, 1f, dcs, n, b, ldb, _betaA, g, k);
                else Gemm.Multiply(tb, true, k, m, n, 1f, b, ldb, dcs, n, _betaA, g, m);
            }
            if (_db is not null)
            {
                Span<float> g = _db.AsSpan(s * sb, sb);
                if (!tb) Gemm.Multiply(!ta, false, k, n, m, 1f, a, lda, dcs, n, _betaB, g, n);
                else Gemm.Multiply(true, ta, n, k, m, 1f, dcs, n, a, lda, _betaB, g, k);
            }
        }

        // Scores tril(q·kᵀ) (B transposed: q, k are T×hs) or weighted sums P·v (P is T×T): see CausalSlices.
        private void ExecuteCausal(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int s)
        {
            int m = _m, n = _n, k = _k, sa = m * k, sb = k * n, sc = m * n;
            bool scores = _tb;
            int t = m, hs = scores ? k : n;
            if (!_backward)
            {
                Span<float> c = _c!.AsSpan(s * sc, sc);
                if (scores) CausalSlices.LowerTimesTransposed(a, _lda, b, _ldb, 0f, c, t, hs);
                else CausalSlices.LowerTimes(a, b, _ldb, 0f, c, hs, t, hs);
                return;
            }
            ReadOnlySpan<float> dcs = _c!.AsSpan(s * sc, sc);
            if (_da is not null)
            {
                Span<float> g = _da.AsSpan(s * sa, sa);
                if (scores) CausalSlices.LowerTimes(dcs, b, _ldb, _betaA, g, hs, t, hs);
                else CausalSlices.LowerTimesTransposed(dcs, hs, b, _ldb, _betaA, g, t, hs);
            }
            if (_db is not null)
            {
                Span<float> g = _db.AsSpan(s * sb, sb);
                if (scores) CausalSlices.LowerTransposedTimes(dcs, a, _lda, _betaB, g, hs, t, hs);
                else CausalSlices.LowerTransposedTimes(a, dcs, hs, _betaB, g, hs, t, hs);
            }
        }
    }
}
