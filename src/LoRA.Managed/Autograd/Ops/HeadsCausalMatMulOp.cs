using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// Causal attention's two products on the projections' own (B, T, H·D) layout: head h of batch item b is the T×D
/// matrix that starts at row b·T, column h·D, with row stride H·D, and a GEMM reads (or writes) it in place through
/// its leading dimension. So the heads are never split into a (B, H, T, D) copy nor merged back (two permutes a
/// product, forward and backward):
/// <list type="bullet">
/// <item><b>scores</b>, S (B, H, T, T) = tril(Q_bh·K_bhᵀ); backward ∂Q_bh = ∂S·K_bh, ∂K_bh = ∂Sᵀ·Q_bh;</item>
/// <item><b>values</b>, Y_bh = P_bh·V_bh written into Y (B, T, H·D); backward ∂P = tril(∂Y_bh·V_bhᵀ),
/// ∂V_bh = P_bhᵀ·∂Y_bh.</item>
/// </list>
/// With grouped-query attention k and v have fewer heads (H_kv, each shared by H / H_kv query heads, Llama's
/// <c>repeat_kv</c>): a slice is then one batch item and key/value head, its query heads in order, so a shared head's
/// gradient sums them in <c>repeat_kv</c>'s order on one thread.
/// Each is the same GEMM calls as <see cref="BatchedMatMulOp"/>'s causal product on permuted copies, over the
/// unmasked triangle (<see cref="CausalSlices"/>), so the bits are those of the permute path (and of
/// <c>repeat_kv</c>'s sum in head order). One case differs in rounding order: with grouped-query attention, a key or
/// value whose gradient already held a value before attention's backward gets G + d₀ + d₁ … added in turn where the
/// permute path adds G + (d₀ + d₁ + …); in the models here those gradients are always fresh. The slices (b, h) run in
/// runs over threads (<see cref="SlicedJob"/>); each writes only its own block of every output and gradient, and the
/// blocks of all slices cover each tensor once, so a gradient that is still zero is written (β = 0), not added to.
/// </summary>
internal sealed class HeadsCausalMatMulOp : Op
{
    private Tensor _a = null!, _b = null!;
    private bool _scores;
    private int _batch, _heads, _kvHeads, _time, _dim;

    public override string Name => "bmm";

    /// <summary>S = tril(Q·Kᵀ) per head: q (B, T, H·D) and k (B, T, H_kv·D) → (B, H, T, T); query head h reads key
    /// head h / (H / H_kv).</summary>
    public static Tensor Scores(Tensor q, Tensor k, int heads, int kvHeads)
    {
        var (batch, time, dim) = Check(q, "q", heads);
        if (k.Rank != 3 || k.Shape[0] != batch || k.Shape[1] != time || kvHeads <= 0 || heads % kvHeads != 0
            || k.Shape[2] != kvHeads * dim)
            throw new ArgumentException($"attention scores: k {Shapes.Format(k.Shape)} is not ({batch}, {time}, " +
                $"{kvHeads}·{dim}) for q {Shapes.Format(q.Shape)} with {heads} heads and {kvHeads} key/value heads.");
        Tensor s = Tape.NewTensor([batch, heads, time, time]); // every slice written with β = 0
        return Run(q, k, s, scores: true, batch, heads, kvHeads, time, dim);
    }

    /// <summary>Y = P·V per head: p (B, H, T, T) lower triangular and v (B, T, H_kv·D) → (B, T, H·D); query head h
    /// weighs value head h / (H / H_kv).</summary>
    public static Tensor Values(Tensor p, Tensor v, int kvHeads)
    {
        var (batch, time, dim) = Check(v, "v", kvHeads);
        int heads = p.Rank == 4 ? p.Shape[1] : 0;
        if (p.Rank != 4 || p.Shape[0] != batch || heads % kvHeads != 0 || heads == 0 || p.Shape[2] != time
            || p.Shape[3] != time)
            throw new ArgumentException($"attention values: p {Shapes.Format(p.Shape)} is not ({batch}, H, " +
                $"{time}, {time}) with H a multiple of {kvHeads} for v {Shapes.Format(v.Shape)}.");
        Tensor y = Tape.NewTensor([batch, time, heads * dim]); // the slices' blocks cover it
        return Run(p, v, y, scores: false, batch, heads, kvHeads, time, dim);
    }

    private static (int Batch, int Time, int Dim) Check(Tensor x, string name, int heads)
    {
        if (x.Rank != 3 || heads <= 0 || x.Shape[2] % heads != 0)
            throw new ArgumentException($"attention: {name} {Shapes.Format(x.Shape)} is not (B, T, H·D) for " +
                $"{heads} heads.");
        return (x.Shape[0], x.Shape[1], x.Shape[2] / heads);
    }

    private static Tensor Run(Tensor a, Tensor b, Tensor output, bool scores, int batch, int heads, int kvHeads,
        int time, int dim)
    {
        var job = t_job ??= new Job();
        try
        {
            job.Set(a.Array, b.Array, output.Array, null, null, 0f, 0f, scores, backward: false, heads, kvHeads, time,
                dim);
            SlicedJob.Run(job, batch * kvHeads, (long)heads / kvHeads * time * time * dim);
        }
        finally { job.Clear(); }
        if (Tape.ShouldRecord(a, b))
        {
            var op = Tape.Record<HeadsCausalMatMulOp>(output);
            op._a = a; op._b = b; op._scores = scores;
            op._batch = batch; op._heads = heads; op._kvHeads = kvHeads; op._time = time; op._dim = dim;
        }
        return output;
    }

    public override void Backward()
    {
        // Each input's gradient written (β = 0) or added to (β = 1): Op.GradBetas.
        var (da, betaA, db, betaB) = GradBetas(_a, _b);
        var job = t_job ??= new Job();
        try
        {
            job.Set(_a.Array, _b.Array, Output.EnsureGrad(), da, db, betaA, betaB, _scores, backward: true, _heads,
                _kvHeads, _time, _dim);
            SlicedJob.Run(job, _batch * _kvHeads, 2L * _heads / _kvHeads * _time * _time * _dim);
        }
        finally { job.Clear(); }
    }

    [ThreadStatic] private static Job? t_job;

    /// <summary>Slice s = b·H_kv + g: key/value head g of batch item b and its query heads; reused per thread, so a
    /// step allocates nothing.</summary>
    private sealed class Job : SlicedJob
    {
        private float[]? _a, _b, _c, _da, _db;
        private float _betaA, _betaB;
        private bool _scores, _backward;
        private int _heads, _kvHeads, _time, _dim;

        public void Set(float[] a, float[] b, float[] c, float[]? da, float[]? db, float betaA, float betaB,
            bool scores, bool backward, int heads, int kvHeads, int time, int dim)
        {
            _a = a; _b = b; _c = c; _da = da; _db = db; _betaA = betaA; _betaB = betaB;
            _scores = scores; _backward = backward; _heads = heads; _kvHeads = kvHeads; _time = time; _dim = dim;
        }

        public void Clear() { _a = _b = _c = _da = _db = null; }

        protected override bool RowBlocks => !CausalSlices.FullProducts;

        public override void ExecuteSlice(int s)
        {
            int t = _time, d = _dim, rep = _heads / _kvHeads, b = s / _kvHeads, g = s % _kvHeads;
            int wq = _heads * d, wkv = _kvHeads * d;                // row strides of q, y and of k, v
            int kv = b * t * wkv + g * d;                           // (b, g)'s block of k or v
            for (int r = 0; r < rep; r++)
            {
                int h = g * rep + r;
                int qy = b * t * wq + h * d;                        // (b, h)'s block of q or y
                int square = (b * _heads + h) * t * t;              // (b, h)'s slice of S or P
                // A shared key/value head's gradient: written by its first query head (or added, β = 1, when it
                // already held a gradient), then added to by the others, in head order.
                float betaB = r == 0 ? _betaB : 1f;
                if (_scores) Scores(t, d, wq, wkv, kv, qy, square, betaB);
                else Values(t, d, wq, wkv, kv, qy, square, betaB);
            }
        }

        // a = q, b = k; c = S or ∂S (B, H, T, T).
        private void Scores(int t, int d, int wq, int wkv, int kv, int qy, int square, float betaB)
        {
            if (!_backward)
            {
                CausalSlices.LowerTimesTransposed(_a.AsSpan(qy), wq, _b.AsSpan(kv), wkv, 0f, _c.AsSpan(square, t * t),
                    t, d);
                return;
            }
            ReadOnlySpan<float> ds = _c.AsSpan(square, t * t);
            if (_da is not null)
            {
                var into = Into.Gradient(_da.AsSpan(qy), wq, _betaA, t, d);
                CausalSlices.LowerTimes(ds, _b.AsSpan(kv), wkv, into.Beta, into.C, into.Ld, t, d);
                into.Finish();
            }
            if (_db is not null)
            {
                var into = Into.Gradient(_db.AsSpan(kv), wkv, betaB, t, d);
                CausalSlices.LowerTransposedTimes(ds, _a.AsSpan(qy), wq, into.Beta, into.C, into.Ld, t, d);
                into.Finish();
            }
        }

        // a = P (B, H, T, T), b = v; c = y or ∂y (B, T, H·D).
        private void Values(int t, int d, int wq, int wkv, int kv, int qy, int square, float betaB)
        {
            ReadOnlySpan<float> p = _a.AsSpan(square, t * t);
            if (!_backward)
            {
                CausalSlices.LowerTimes(p, _b.AsSpan(kv), wkv, 0f, _c.AsSpan(qy), wq, t, d);
                return;
            }
            if (_da is not null) // depth D: one GEMM depth block, so adding with β = 1 is adding the whole product
                CausalSlices.LowerTimesTransposed(_c.AsSpan(qy), wq, _b.AsSpan(kv), wkv, _betaA,
                    _da.AsSpan(square, t * t), t, d);
            if (_db is not null)
            {
                var into = Into.Gradient(_db.AsSpan(kv), wkv, betaB, t, d);
                CausalSlices.LowerTransposedTimes(p, _c.AsSpan(qy), wq, into.Beta, into.C, into.Ld, t, d);
                into.Finish();
            }
        }

        /// <summary>
        /// Where a backward product over depth T goes (t×d, β). Added to a gradient (β = 1), the GEMM adds each
        /// Gemm.KC-deep block of it to C in turn, where the permute and repeat_kv path adds the whole product; so
        /// beyond KC the product is computed apart, into a per-thread buffer with β = 0, and <see cref="Finish"/> adds
        /// it whole, which keeps that path's bits. Otherwise it goes straight into the gradient's block.
        /// </summary>
        private readonly ref struct Into
        {
            private readonly Span<float> _gradient;   // empty when the product goes straight into it
            private readonly int _gradientLd;

            private Into(Span<float> c, int ld, float beta, Span<float> gradient, int gradientLd)
            {
                C = c; Ld = ld; Beta = beta; _gradient = gradient; _gradientLd = gradientLd;
            }

            /// <summary>The product's destination, its row stride and β.</summary>
            public Span<float> C { get; }
            public int Ld { get; }
            public float Beta { get; }

            public static Into Gradient(Span<float> gradient, int ld, float beta, int t, int d)
            {
                if (beta == 0f || t <= Gemm.KC) return new Into(gradient, ld, beta, default, 0);
                float[] buffer = t_scratch is { } a && a.Length >= t * d ? a : t_scratch = new float[t * d];
                return new Into(buffer.AsSpan(0, t * d), d, 0f, gradient, ld);
            }

            /// <summary>Adds a product computed apart (t rows of d = <see cref="Ld"/>) to the gradient's block, row by
            /// row.</summary>
            public void Finish()
            {
                if (_gradient.IsEmpty) return;
                for (int i = 0, d = Ld; i < C.Length / d; i++)
                {
                    Span<float> row = _gradient.Slice(i * _gradientLd, d);
                    TensorPrimitives.Add(row, C.Slice(i * d, d), row);
                }
            }
        }

        [ThreadStatic] private static float[]? t_scratch;
    }
}
