using LoRA.Managed.Tensors;

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
/// Each is the same GEMM calls as <see cref="BatchedMatMulOp"/>'s causal product on permuted copies, over the
/// unmasked triangle (<see cref="CausalSlices"/>), so the bits are those of the permute path. The slices (b, h) run in
/// runs over threads (<see cref="SlicedJob"/>); each writes only its own block of every output and gradient, and the
/// blocks of all slices cover each tensor once, so a gradient that is still zero is written (β = 0), not added to.
/// </summary>
internal sealed class HeadsCausalMatMulOp : Op
{
    private Tensor _a = null!, _b = null!;
    private bool _scores;
    private int _batch, _heads, _time, _dim;

    public override string Name => "bmm";

    /// <summary>S = tril(Q·Kᵀ) per head: q and k (B, T, H·D) → (B, H, T, T).</summary>
    public static Tensor Scores(Tensor q, Tensor k, int heads)
    {
        var (batch, time, dim) = Check(q, "q", heads);
        if (!k.Shape.AsSpan().SequenceEqual(q.Shape))
            throw new ArgumentException($"attention scores: k {Shapes.Format(k.Shape)} differs from q " +
                $"{Shapes.Format(q.Shape)}.");
        Tensor s = Tape.NewTensor([batch, heads, time, time]); // every slice written with β = 0
        return Run(q, k, s, scores: true, batch, heads, time, dim);
    }

    /// <summary>Y = P·V per head: p (B, H, T, T) lower triangular and v (B, T, H·D) → (B, T, H·D).</summary>
    public static Tensor Values(Tensor p, Tensor v, int heads)
    {
        var (batch, time, dim) = Check(v, "v", heads);
        if (p.Rank != 4 || p.Shape[0] != batch || p.Shape[1] != heads || p.Shape[2] != time || p.Shape[3] != time)
            throw new ArgumentException($"attention values: p {Shapes.Format(p.Shape)} is not ({batch}, {heads}, " +
                $"{time}, {time}) for v {Shapes.Format(v.Shape)}.");
        Tensor y = Tape.NewTensor(v.Shape); // the slices' blocks cover it
        return Run(p, v, y, scores: false, batch, heads, time, dim);
    }

    private static (int Batch, int Time, int Dim) Check(Tensor x, string name, int heads)
    {
        if (x.Rank != 3 || heads <= 0 || x.Shape[2] % heads != 0)
            throw new ArgumentException($"attention: {name} {Shapes.Format(x.Shape)} is not (B, T, H·D) for " +
                $"{heads} heads.");
        return (x.Shape[0], x.Shape[1], x.Shape[2] / heads);
    }

    private static Tensor Run(Tensor a, Tensor b, Tensor output, bool scores, int batch, int heads, int time, int dim)
    {
        var job = t_job ??= new Job();
        try
        {
            job.Set(a.Array, b.Array, output.Array, null, null, 0f, 0f, scores, backward: false, heads, time, dim);
            SlicedJob.Run(job, batch * heads, (long)time * time * dim);
        }
        finally { job.Clear(); }
        if (Tape.ShouldRecord(a, b))
        {
            var op = Tape.Record<HeadsCausalMatMulOp>(output);
            op._a = a; op._b = b; op._scores = scores;
            op._batch = batch; op._heads = heads; op._time = time; op._dim = dim;
        }
        return output;
    }

    public override void Backward()
    {
        // β = 0 when an input's gradient is logically zero (Tensor.GradBeta). When A and B are one tensor, B's blocks
        // are A's, written by the same slice just before, so B's call adds (β = 1).
        float[]? da = null, db = null;
        float betaA = 1f, betaB = 1f;
        if (_a.RequiresGrad) betaA = _a.GradBeta(out da);
        if (_b.RequiresGrad) betaB = _b.GradBeta(out db);
        var job = t_job ??= new Job();
        try
        {
            job.Set(_a.Array, _b.Array, Output.EnsureGrad(), da, db, betaA, betaB, _scores, backward: true, _heads,
                _time, _dim);
            SlicedJob.Run(job, _batch * _heads, 2L * _time * _time * _dim);
        }
        finally { job.Clear(); }
    }

    [ThreadStatic] private static Job? t_job;

    /// <summary>Slice s = b·H + h; reused per thread, so a step allocates nothing.</summary>
    private sealed class Job : SlicedJob
    {
        private float[]? _a, _b, _c, _da, _db;
        private float _betaA, _betaB;
        private bool _scores, _backward;
        private int _heads, _time, _dim;

        public void Set(float[] a, float[] b, float[] c, float[]? da, float[]? db, float betaA, float betaB,
            bool scores, bool backward, int heads, int time, int dim)
        {
            _a = a; _b = b; _c = c; _da = da; _db = db; _betaA = betaA; _betaB = betaB;
            _scores = scores; _backward = backward; _heads = heads; _time = time; _dim = dim;
        }

        public void Clear() { _a = _b = _c = _da = _db = null; }

        public override void ExecuteSlice(int s)
        {
            int t = _time, d = _dim, width = _heads * d;
            int head = (s / _heads) * t * width + (s % _heads) * d; // (b, h)'s block of a (B, T, H·D) tensor
            int square = s * t * t;                                 // slice s of a (B, H, T, T) tensor
            if (_scores)
            {
                // a = q, b = k (B, T, H·D); c = S or ∂S (B, H, T, T).
                if (!_backward)
                {
                    CausalSlices.LowerTimesTransposed(_a.AsSpan(head), width, _b.AsSpan(head), width, 0f,
                        _c.AsSpan(square, t * t), t, d);
                    return;
                }
                ReadOnlySpan<float> ds = _c.AsSpan(square, t * t);
                if (_da is not null)
                    CausalSlices.LowerTimes(ds, _b.AsSpan(head), width, _betaA, _da.AsSpan(head), width, t, d);
                if (_db is not null)
                    CausalSlices.LowerTransposedTimes(ds, _a.AsSpan(head), width, _betaB, _db.AsSpan(head), width, t,
                        d);
                return;
            }
            // a = P (B, H, T, T), b = v (B, T, H·D); c = y or ∂y (B, T, H·D).
            ReadOnlySpan<float> p = _a.AsSpan(square, t * t);
            if (!_backward)
            {
                CausalSlices.LowerTimes(p, _b.AsSpan(head), width, 0f, _c.AsSpan(head), width, t, d);
                return;
            }
            if (_da is not null)
                CausalSlices.LowerTimesTransposed(_c.AsSpan(head), width, _b.AsSpan(head), width, _betaA,
                    _da.AsSpan(square, t * t), t, d);
            if (_db is not null)
                CausalSlices.LowerTransposedTimes(p, _c.AsSpan(head), width, _betaB, _db.AsSpan(head), width, t, d);
        }
    }
}
