using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LoRA.Managed.Kernels;

/// <summary>
/// Splits a product with a small C and a long shared dimension over threads by blocks of <see cref="Gemm.KC"/> of k,
/// with the bits of one thread: the transformer's weight gradients, <c>∂W = ∂yᵀ·x</c>, 64×64 summed over 2,048
/// tokens.
/// </summary>
/// <remarks>
/// <para>Why: <see cref="Gemm"/> otherwise splits C's rows or columns, so every thread reads every token of x (and
/// its share of ∂y) from wherever the previous ops left them: half from the other core's cache, since those ops split
/// the tokens. In <c>lm-demo</c>'s GPT step the 64×64 weight gradients ran only 1.2× faster on two threads than on
/// one, and the 96×64 one not at all, where the same products alone scale 1.8–1.97× (docs/07-performance.md,
/// "Weight gradients split over the tokens"). Split by k, each thread reads only its own tokens.</para>
/// <para>How the bits are kept. The one-thread path sums each element of C block by block of KC: acc_b from zero
/// over block b's p in increasing order, then C ← alpha·acc_0 (beta 0; C not read) or fma(C, beta, alpha·acc_0), and
/// C ← fma(C, 1, alpha·acc_b) for every later block (<see cref="MicroKernels"/>, <see cref="NarrowKernels"/>). Part 0
/// runs exactly that on the leading blocks, straight into C. Every other part writes each of its blocks' acc_b to a
/// slot of its own (alpha 1 and beta 0 store acc_b unchanged). Then the calling thread applies
/// C ← fma(C, 1, alpha·acc_b) for those blocks in increasing b: the same operations on the same values in the same
/// order, so C has the bits of the serial product for any number of parts.</para>
/// </remarks>
internal static unsafe class DepthSplit
{
    /// <summary>Fewest whole blocks of k (4 × <see cref="Gemm.KC"/> = 1,024) for which the split is taken: the MLP's
    /// products (k ≤ 784) keep the split of C, where the split by k was 12–37 % slower (32×784·784×512).</summary>
    public const int MinBlocks = 4;

    /// <summary>Most elements of C (64×256, the GPT's widest weight gradient) for which the split is taken: with a
    /// larger C, splitting it gives each thread enough columns or rows, and the slots would grow.</summary>
    public const int MaxOutputs = 64 * 256;

    /// <summary>Most rows and most columns of C: a wider C (32×2048·2048×512 was 5 % slower split by k) gives each
    /// thread enough columns of its own.</summary>
    public const int MaxSide = 256;

    /// <summary>Most floats of slots (4 MB): a very long k keeps the split of C rather than grow them.</summary>
    private const long MaxSlotFloats = 1 << 20;

    /// <summary>True when a product of this shape on <paramref name="threads"/> threads is split by k.</summary>
    public static bool Applies(int m, int n, int k, int threads)
    {
        if (threads < 2 || m > MaxSide || n > MaxSide || (long)m * n > MaxOutputs || k < MinBlocks * Gemm.KC)
            return false;
        int blocks = Blocks(k);
        int parts = Math.Min(threads, blocks);
        return (long)(blocks - FirstBlocks(blocks, parts)) * m * n <= MaxSlotFloats;
    }

    /// <summary><see cref="Gemm.Multiply"/> for a shape where <see cref="Applies"/> holds, then
    /// <paramref name="epilogue"/> on C.</summary>
    public static void Multiply(bool transA, bool transB, int m, int n, int k, float alpha, float* a, int lda,
        float* b, int ldb, float beta, float* c, int ldc, int threads, GemmEpilogue epilogue)
    {
        int blocks = Blocks(k), parts = Math.Min(threads, blocks);
        int first = FirstBlocks(blocks, parts);
        long slotFloats = (long)m * n;
        float[] slots = t_slots is { } s && s.Length >= (blocks - first) * slotFloats + 16 ? s
            : t_slots = GC.AllocateUninitializedArray<float>((int)((blocks - first) * slotFloats) + 16, pinned: true);
        fixed (float* unaligned = slots)
        {
            float* slot0 = Gemm.Align64(unaligned);
            var job = t_job ??= new DepthJob();
            job.Set(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, blocks, parts, first, slot0);
            try { ComputePool.Run(job, parts, threads); }
            finally { job.Clear(); }
            // The later blocks in increasing order, as the serial path adds them.
            for (int blk = first; blk < blocks; blk++)
                AddBlock(m, n, alpha, slot0 + (blk - first) * slotFloats, c, ldc);
        }
        epilogue.Apply(c, m, n, ldc, 0);
    }

    /// <summary>Blocks of <see cref="Gemm.KC"/> in k.</summary>
    private static int Blocks(int k) => (k + Gemm.KC - 1) / Gemm.KC;

    /// <summary>The first block of part <paramref name="part"/>: consecutive blocks, as even as they
    /// come.</summary>
    private static int Start(int part, int blocks, int parts) => (int)((long)part * blocks / parts);

    private static int FirstBlocks(int blocks, int parts) => Start(1, blocks, parts);

    /// <summary><c>C ← fma(C, 1, alpha·acc)</c> over the m×n block of acc (row stride n): the serial path's update
    /// for a block after the first.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddBlock(int m, int n, float alpha, float* acc, float* c, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            float* row = c + (long)i * ldc, p = acc + (long)i * n;
            int j = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var va = Vector512.Create(alpha);
                for (; j + 16 <= n; j += 16)
                    Vector512.FusedMultiplyAdd(Vector512.Load(row + j), Vector512<float>.One,
                        Vector512.Load(p + j) * va).Store(row + j);
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var va = Vector256.Create(alpha);
                for (; j + 8 <= n; j += 8)
                    Vector256.FusedMultiplyAdd(Vector256.Load(row + j), Vector256<float>.One,
                        Vector256.Load(p + j) * va).Store(row + j);
            }
            for (; j < n; j++) row[j] = MathF.FusedMultiplyAdd(row[j], 1f, alpha * p[j]);
        }
    }

    [ThreadStatic] private static float[]? t_slots;
    [ThreadStatic] private static DepthJob? t_job;

    /// <summary>Part 0: the leading blocks into C; part p &gt; 0: each of its blocks into its slot.</summary>
    private sealed class DepthJob : ComputeJob
    {
        private bool _transA, _transB;
        private int _m, _n, _k, _lda, _ldb, _ldc, _blocks, _parts, _first;
        private float _alpha, _beta;
        private float* _a, _b, _c, _slots;

        public void Set(bool transA, bool transB, int m, int n, int k, float alpha, float* a, int lda, float* b,
            int ldb, float beta, float* c, int ldc, int blocks, int parts, int first, float* slots)
        {
            _transA = transA; _transB = transB; _m = m; _n = n; _k = k; _alpha = alpha; _beta = beta;
            _a = a; _lda = lda; _b = b; _ldb = ldb; _c = c; _ldc = ldc;
            _blocks = blocks; _parts = parts; _first = first; _slots = slots;
        }

        public void Clear() { _a = _b = _c = _slots = null; }

        public override void Execute(int part)
        {
            int start = Start(part, _blocks, _parts), end = Start(part + 1, _blocks, _parts);
            if (part == 0)
            {
                Gemm.Serial(_transA, _transB, _m, _n, Math.Min(_k, end * Gemm.KC), _alpha, _a, _lda, _b,
                    _ldb, _beta, _c, _ldc);
                return;
            }
            for (int blk = start; blk < end; blk++)
            {
                int pc = blk * Gemm.KC, kc = Math.Min(Gemm.KC, _k - pc);
                // op(A) is m×k: stored m×k, its block starts pc columns in; stored k×m (transA), pc rows in.
                // op(B) is k×n: stored k×n, pc rows in; stored n×k (transB), pc columns in.
                float* ap = _a + (_transA ? (long)pc * _lda : pc);
                float* bp = _b + (_transB ? pc : (long)pc * _ldb);
                Gemm.Serial(_transA, _transB, _m, _n, kc, 1f, ap, _lda, bp, _ldb, 0f,
                    _slots + (long)(blk - _first) * _m * _n, _n);
            }
        }
    }
}
