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
/// threads instead. Each slice is still computed by one thread in one order, so results do not depend on it.
/// </remarks>
internal sealed class BatchedMatMulOp : Op
{
    private readonly Tensor _a, _b;
    private readonly bool _ta, _tb;
    private readonly int _batch, _m, _n, _k;

    private BatchedMatMulOp(Tensor c, Tensor a, Tensor b, bool ta, bool tb, int batch, int m, int n, int k) : base(c)
    {
        _a = a; _b = b; _ta = ta; _tb = tb; _batch = batch; _m = m; _n = n; _k = k;
    }

    public override string Name => "bmm";

    public static Tensor Apply(Tensor a, Tensor b, bool transA, bool transB)
    {
        if (a.Rank < 2 || a.Rank != b.Rank || !a.Shape.AsSpan(0, a.Rank - 2).SequenceEqual(b.Shape.AsSpan(0, b.Rank - 2)))
            throw new ArgumentException($"bmm: A {Shapes.Format(a.Shape)} and B {Shapes.Format(b.Shape)} must have the same rank (≥ 2) and the same leading dimensions.");
        int ra = a.Shape[^2], ca = a.Shape[^1], rb = b.Shape[^2], cb = b.Shape[^1];
        int m = transA ? ca : ra, k = transA ? ra : ca, kb = transB ? cb : rb, n = transB ? rb : cb;
        if (k != kb)
            throw new ArgumentException($"bmm: inner dimensions differ: A {Shapes.Format(a.Shape)}{(transA ? "ᵀ" : "")} and B {Shapes.Format(b.Shape)}{(transB ? "ᵀ" : "")}.");
        int batch = 1;
        for (int d = 0; d < a.Rank - 2; d++) batch *= a.Shape[d];
        var shape = (int[])a.Shape.Clone();
        shape[^2] = m;
        shape[^1] = n;
        var c = new Tensor(shape);
        float[] aa = a.Array, ba = b.Array, cc = c.Array;
        int lda = ca, ldb = cb, sa = ra * ca, sb = rb * cb, sc = m * n;
        ForEachSlice(batch, (long)m * n * k, s =>
            Gemm.Multiply(transA, transB, m, n, k, 1f, aa.AsSpan(s * sa, sa), lda, ba.AsSpan(s * sb, sb), ldb, 0f, cc.AsSpan(s * sc, sc), n));
        if (Tape.ShouldRecord(a, b)) Tape.Current.Record(new BatchedMatMulOp(c, a, b, transA, transB, batch, m, n, k));
        return c;
    }

    public override void Backward()
    {
        float[] dc = Output.EnsureGrad(), aa = _a.Array, ba = _b.Array;
        float[]? da = _a.RequiresGrad ? _a.EnsureGrad() : null, db = _b.RequiresGrad ? _b.EnsureGrad() : null;
        int m = _m, n = _n, k = _k;
        bool ta = _ta, tb = _tb;
        int lda = _a.Shape[^1], ldb = _b.Shape[^1], sa = m * k, sb = k * n, sc = m * n;
        ForEachSlice(_batch, 2L * m * n * k, s =>
        {
            ReadOnlySpan<float> dcs = dc.AsSpan(s * sc, sc), a = aa.AsSpan(s * sa, sa), b = ba.AsSpan(s * sb, sb);
            if (da is not null)
            {
                Span<float> g = da.AsSpan(s * sa, sa);
                if (!ta) Gemm.Multiply(false, !tb, m, k, n, 1f, dcs, n, b, ldb, 1f, g, k);
                else Gemm.Multiply(tb, true, k, m, n, 1f, b, ldb, dcs, n, 1f, g, m);
            }
            if (db is not null)
            {
                Span<float> g = db.AsSpan(s * sb, sb);
                if (!tb) Gemm.Multiply(!ta, false, k, n, m, 1f, a, lda, dcs, n, 1f, g, n);
                else Gemm.Multiply(true, ta, n, k, m, 1f, dcs, n, a, lda, 1f, g, k);
            }
        });
    }

    /// <summary>Runs <paramref name="body"/> for each slice, spread over threads when slices are small but many.</summary>
    private static void ForEachSlice(int batch, long workPerSlice, Action<int> body)
    {
        int threads = ComputeThreads.Max;
        if (threads == 1 || batch < 2 || workPerSlice >= Gemm.ParallelThreshold || workPerSlice * batch < Gemm.ParallelThreshold)
        {
            for (int s = 0; s < batch; s++) body(s);
            return;
        }
        Parallel.For(0, batch, new ParallelOptions { MaxDegreeOfParallelism = threads }, body);
    }
}
