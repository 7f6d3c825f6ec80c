using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoRA.Managed.Kernels;

/// <summary>
/// One fused SIMD pass of Adam over a parameter span, exactly PyTorch's formulation
/// (<c>torch.optim.Adam</c>, single-tensor path; Kingma &amp; Ba 2015, Algorithm 1):
/// <code>
/// g ← g + λ·θ                      (L2 weight decay, Adam only)
/// m ← m + (1−β₁)·(g − m)           (torch: exp_avg.lerp_(grad, 1 − β₁))
/// v ← β₂·v + (1−β₂)·g·g             (torch: exp_avg_sq.mul_(β₂).addcmul_(grad, grad, 1 − β₂))
/// θ ← θ − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)
/// </code>
/// The operations are evaluated in PyTorch's order, and 1−β is computed in double before rounding
/// to float as PyTorch does with its Python-float hyper-parameters, so results track PyTorch closely.
/// AdamW's decoupled decay (<c>θ ← θ·(1 − lr·λ)</c>, Loshchilov &amp; Hutter 2019) is applied by the
/// caller's <c>decoupledDecay</c> factor before the update, in the same pass.
/// </summary>
public static unsafe class AdamUpdate
{
    /// <summary>
    /// Spans at least this long are split over <see cref="ComputeThreads.Max"/> threads in blocks of 16
    /// elements. Each element's update reads and writes only its own θ, g, m, v, so any split computes
    /// exactly the same bits; the blocks keep the SIMD/scalar boundary where the serial loop puts it.
    /// </summary>
    public const int ParallelThreshold = 1 << 16;

    /// <summary>Updates <paramref name="param"/>, <paramref name="m"/> and <paramref name="v"/> in place.</summary>
    /// <param name="param">θ.</param>
    /// <param name="grad">g.</param>
    /// <param name="m">First-moment estimate.</param>
    /// <param name="v">Second-moment estimate.</param>
    /// <param name="stepSize">lr / (1 − β₁ᵗ).</param>
    /// <param name="oneMinusBeta1">1 − β₁.</param>
    /// <param name="beta2">β₂.</param>
    /// <param name="oneMinusBeta2">1 − β₂.</param>
    /// <param name="bias2Sqrt">√(1 − β₂ᵗ).</param>
    /// <param name="eps">ε.</param>
    /// <param name="l2">λ of Adam's L2 decay added to the gradient (0 for none).</param>
    /// <param name="decoupledDecay">Factor θ is multiplied by first (1 − lr·λ for AdamW, 1 for Adam).</param>
    public static void Step(Span<float> param, Span<float> grad, Span<float> m, Span<float> v,
        float stepSize, float oneMinusBeta1, float beta2, float oneMinusBeta2, float bias2Sqrt, float eps, float l2,
        float decoupledDecay)
    {
        int n = param.Length;
        if (grad.Length != n || m.Length != n || v.Length != n)
            throw new ArgumentException($"AdamUpdate.Step: lengths differ: param {n}, grad {grad.Length}, m " +
                $"{m.Length}, v {v.Length}.");
        fixed (float* pp = param, pg = grad, pm = m, pv = v)
        {
            var h = new Hyper(stepSize, oneMinusBeta1, beta2, oneMinusBeta2, bias2Sqrt, eps, l2, decoupledDecay);
            int threads = ComputeThreads.Max;
            if (n < ParallelThreshold || threads <= 1)
            {
                Range(pp, pg, pm, pv, 0, n, h);
                return;
            }
            var job = t_job ??= new AdamJob();
            job.Set(pp, pg, pm, pv, n, threads, h);
            try { ComputePool.Run(job, threads, threads); }
            finally { job.Clear(); }
        }
    }

    /// <summary>One tensor of a multi-tensor step: θ, g, m, v (one length) and its decoupled decay factor.</summary>
    internal readonly record struct Tensors(float[] Param, float[] Grad, float[] M, float[] V, float Decay);

    /// <summary>
    /// <see cref="Step"/> on the first <paramref name="count"/> tensors of <paramref name="tensors"/> as one parallel
    /// job (PyTorch's multi-tensor <c>foreach</c> Adam): part p of T updates the p-th block of every tensor, blocks of
    /// whole 16-element groups cut as <see cref="Step"/> cuts one tensor, so the bits are the per-tensor loop's. One
    /// job instead of one per tensor spares the dispatches; and each core updates the half of each weight gradient
    /// that its own part of the weight-gradient GEMM wrote (that GEMM splits C's rows in halves too), where a tensor
    /// below <see cref="ParallelThreshold"/> was updated by the caller alone, reading the other core's half. The job
    /// references <paramref name="tensors"/> while it runs; nothing is copied.
    /// </summary>
    internal static void StepMany(Tensors[] tensors, int count, float stepSize, float oneMinusBeta1, float beta2,
        float oneMinusBeta2, float bias2Sqrt, float eps, float l2)
    {
        long total = 0;
        for (int i = 0; i < count; i++)
        {
            Tensors t = tensors[i];
            int n = t.Param.Length;
            if (t.Grad.Length != n || t.M.Length != n || t.V.Length != n)
                throw new ArgumentException($"AdamUpdate.StepMany: tensor {i}'s lengths differ: param {n}, grad " +
                    $"{t.Grad.Length}, m {t.M.Length}, v {t.V.Length}.");
            total += n;
        }
        var h = new Hyper(stepSize, oneMinusBeta1, beta2, oneMinusBeta2, bias2Sqrt, eps, l2, 1f);
        int threads = ComputeThreads.Max;
        if (total < ParallelThreshold || threads <= 1)
        {
            for (int i = 0; i < count; i++) Part(tensors[i], 0, 1, h);
            return;
        }
        var job = t_many ??= new ManyJob();
        job.Set(tensors, count, threads, h);
        try { ComputePool.Run(job, threads, threads); }
        finally { job.Clear(); }
    }

    private static void Part(in Tensors t, int part, int parts, Hyper h)
    {
        fixed (float* pp = t.Param, pg = t.Grad, pm = t.M, pv = t.V)
            Part(pp, pg, pm, pv, t.Param.Length, part, parts, h with { Decay = t.Decay });
    }

    /// <summary>Part <paramref name="part"/> of <paramref name="parts"/> of n elements: [p·chunk, (p+1)·chunk) with
    /// chunk a multiple of 16, the last part to the end.</summary>
    private static void Part(float* p, float* g, float* m, float* v, int n, int part, int parts, Hyper h)
    {
        int chunk = (n / 16 + parts - 1) / parts * 16, start = part * chunk;
        int end = part == parts - 1 ? n : Math.Min(n, start + chunk);
        if (start < end) Range(p, g, m, v, start, end, h);
    }

    [ThreadStatic] private static ManyJob? t_many;

    /// <summary>The caller's tensors of a multi-tensor step, referenced for the job only (no copy, no
    /// allocation).</summary>
    private sealed class ManyJob : ComputeJob
    {
        private Tensors[] _tensors = [];
        private int _count, _parts;
        private Hyper _h;

        public void Set(Tensors[] tensors, int count, int parts, Hyper h)
        {
            _tensors = tensors; _count = count; _parts = parts; _h = h;
        }

        public void Clear()
        {
            _tensors = [];
            _count = 0;
        }

        public override void Execute(int part)
        {
            for (int i = 0; i < _count; i++) Part(_tensors[i], part, _parts, _h);
        }
    }

    private readonly record struct Hyper(float StepSize, float OneMinusBeta1, float Beta2, float OneMinusBeta2,
        float Bias2Sqrt, float Eps,
        float L2, float Decay);

    [ThreadStatic] private static AdamJob? t_job;

    /// <summary>The parts of one tensor (<see cref="Step"/>), each cut as the multi-tensor step cuts it.</summary>
    private sealed class AdamJob : ComputeJob
    {
        private float* _p, _g, _m, _v;
        private int _n, _parts;
        private Hyper _h;

        public void Set(float* p, float* g, float* m, float* v, int n, int parts, Hyper h)
        {
            _p = p; _g = g; _m = m; _v = v; _n = n; _parts = parts; _h = h;
        }

        public void Clear() { _p = _g = _m = _v = null; }

        public override void Execute(int part) => Part(_p, _g, _m, _v, _n, part, _parts, _h);
    }

    /// <summary>The fused update of elements [start, end): SIMD blocks of 16 (or 8) from start, then a scalar
    /// tail.</summary>
    private static void Range(float* param, float* grad, float* m, float* v, int start, int end, Hyper h)
    {
        float stepSize = h.StepSize, beta2 = h.Beta2, bias2Sqrt = h.Bias2Sqrt, eps = h.Eps, l2 = h.L2,
            decoupledDecay = h.Decay;
        float omb1 = h.OneMinusBeta1, omb2 = h.OneMinusBeta2;
        int n = end;
        int i = start;
        if (Vector512.IsHardwareAccelerated)
        {
            // Chunks of vectors are dense or sparse in subnormal moments (SubnormalMoments.DenseShare), and a chunk
            // is updated the way its predecessor turned out to need: the loops count as they go, so nothing is read
            // twice. Each loop returns at the first chunk of the other kind; both give the same bits.
            float threshold = SubnormalMoments.Threshold(stepSize, eps, omb1);
            int resting = SubnormalMoments.RestingMagnitude(omb1);
            int vectorsEnd = i + ((n - i) & ~15);
            for (bool dense = false; i < vectorsEnd; dense = !dense)
                i = dense ? Vectors<DenseChunks>(param, grad, m, v, i, vectorsEnd, h, threshold, resting)
                    : Vectors<SparseChunks>(param, grad, m, v, i, vectorsEnd, h, threshold, resting);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vomb1 = Vector256.Create(omb1);
            var vb2 = Vector256.Create(beta2); var vomb2 = Vector256.Create(omb2);
            var vstep = Vector256.Create(stepSize); var vbc2 = Vector256.Create(bias2Sqrt);
            var veps = Vector256.Create(eps); var vl2 = Vector256.Create(l2);
            var vdec = Vector256.Create(decoupledDecay);
            for (; i <= n - 8; i += 8)
            {
                var p = Vector256.Load(param + i) * vdec;
                var g = Vector256.Load(grad + i) + vl2 * Vector256.Load(param + i);
                var m0 = Vector256.Load(m + i);
                var mi = m0 + vomb1 * (g - m0);
                var vi = vb2 * Vector256.Load(v + i) + vomb2 * g * g;
                var denom = Vector256.Sqrt(vi) / vbc2 + veps;
                p -= vstep * (mi / denom);
                mi.Store(m + i); vi.Store(v + i); p.Store(param + i);
            }
        }
        for (; i < n; i++)
        {
            float p0 = param[i];
            float g = grad[i] + l2 * p0;
            float mi = m[i] + omb1 * (g - m[i]);
            float vi = beta2 * v[i] + omb2 * g * g;
            float denom = MathF.Sqrt(vi) / bias2Sqrt + eps;
            m[i] = mi; v[i] = vi;
            param[i] = p0 * decoupledDecay - stepSize * (mi / denom);
        }
    }

    /// <summary>The kind of chunk a loop of <see cref="Vectors{TKind}"/> updates, fixed when it is compiled.</summary>
    private interface IChunkKind
    {
        static abstract bool Dense { get; }
    }

    /// <summary>Chunks with many subnormal moments (<see cref="SubnormalMoments.DenseShare"/>).</summary>
    private readonly struct DenseChunks : IChunkKind
    {
        public static bool Dense => true;
    }

    /// <summary>Chunks with few or none.</summary>
    private readonly struct SparseChunks : IChunkKind
    {
        public static bool Dense => false;
    }

    /// <summary>
    /// Vectors from <paramref name="start"/> in chunks of one kind. Sparse: a vector's lanes are tested only when
    /// <see cref="SubnormalMoments.Any"/> finds one (and only with AVX-512F, which <see cref="SubnormalMoments.Decay"/>
    /// needs). Dense: every vector's lanes tested and decayed without a branch, which in such a chunk would be
    /// mispredicted every few vectors. Counts the vectors with a subnormal moment as it goes and returns at the end of
    /// the first chunk of the other kind, or at <paramref name="end"/>. Each kind is compiled on its own (a generic
    /// over a struct), which is what keeps the vector constants in registers: in one loop with both kinds, the JIT kept
    /// them and the index in memory.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int Vectors<TKind>(float* param, float* grad, float* m, float* v, int start, int end, Hyper h,
        float threshold, int resting) where TKind : struct, IChunkKind
    {
        bool exactSubnormals = Avx512F.IsSupported;
        var vomb1 = Vector512.Create(h.OneMinusBeta1);
        var vb2 = Vector512.Create(h.Beta2); var vomb2 = Vector512.Create(h.OneMinusBeta2);
        var vstep = Vector512.Create(h.StepSize); var vbc2 = Vector512.Create(h.Bias2Sqrt);
        var veps = Vector512.Create(h.Eps); var vl2 = Vector512.Create(h.L2);
        var vdec = Vector512.Create(h.Decay);
        var vThreshold = Vector512.Create(threshold);
        var vResting = Vector512.Create(resting);
        var vomb1Double = Vector512.Create((double)h.OneMinusBeta1);
        int i = start;
        while (i < end)
        {
            // Not i + ChunkLength first: near int.MaxValue that would wrap and the loop would never advance.
            int chunkEnd = end - i > SubnormalMoments.ChunkLength ? i + SubnormalMoments.ChunkLength : end, flagged = 0;
            for (; i < chunkEnd; i += 16)
            {
                var p = Vector512.Load(param + i) * vdec;
                var g = Vector512.Load(grad + i) + vl2 * Vector512.Load(param + i);
                var m0 = Vector512.Load(m + i);
                // Lanes with a subnormal m and a zero gradient: same bits without subnormal arithmetic (see
                // SubnormalMoments). Where there are none the selects keep m: a blend each, no flag to test.
                var decaying = Vector512<float>.Zero;
                Vector512<float> mDecayed = default;
                if (TKind.Dense)
                {
                    decaying = SubnormalMoments.CountedLanes(m0, g, p, vThreshold, ref flagged).AsSingle();
                    mDecayed = SubnormalMoments.Decay(m0, vomb1Double);
                }
                else if (exactSubnormals && SubnormalMoments.Any(m0))
                {
                    flagged++;
                    Vector512<int> lanes = SubnormalMoments.Lanes(m0, g, p, vThreshold);
                    // Lanes at rest (the usual case in a long run) keep m: Decay would return it unchanged.
                    mDecayed = SubnormalMoments.AnyMoving(m0, lanes, vResting)
                        ? SubnormalMoments.Decay(m0, vomb1Double) : m0;
                    decaying = lanes.AsSingle();
                }
                m0 = Vector512.ConditionalSelect(decaying, Vector512<float>.Zero, m0);
                var mi = m0 + vomb1 * (g - m0);
                var vi = vb2 * Vector512.Load(v + i) + vomb2 * g * g;
                var denom = Vector512.Sqrt(vi) / vbc2 + veps;
                p -= vstep * (mi / denom);
                Vector512.ConditionalSelect(decaying, mDecayed, mi).Store(m + i);
                vi.Store(v + i); p.Store(param + i);
            }
            if (SubnormalMoments.Dense(flagged, SubnormalMoments.ChunkLength / 16) != TKind.Dense) return i;
        }
        return i;
    }
}
