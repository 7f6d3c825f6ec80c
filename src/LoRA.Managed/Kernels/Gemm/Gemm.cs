using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LoRA.Managed.Kernels;

/// <summary>
/// The fast single-precision GEMM, <c>C = alpha·op(A)·op(B) + beta·C</c> on row-major spans, in the
/// structure of GotoBLAS/BLIS (Goto &amp; van de Geijn, "Anatomy of High-Performance Matrix
/// Multiplication", 2008): five loops around a register-blocked micro-kernel over packed panels.
/// </summary>
/// <remarks>
/// <para>Loops, outermost first: columns of C in blocks of <c>NC</c> (a packed KC×NC block of B stays in
/// L2); the shared dimension in blocks of <c>KC</c>; rows of C in blocks of <c>MC</c> (a packed MC×KC block
/// of A); then NR-wide and MR-high tiles, each computed by the micro-kernel entirely in registers.</para>
/// <para>Transposes are handled by the packing routines, so callers (autograd's backward in particular)
/// never materialise a transposed copy. The micro-kernel is 8×32 on <see cref="Vector512{T}"/>,
/// 6×16 on <see cref="Vector256{T}"/>, and a scalar loop elsewhere. <see cref="GemmReference"/> is the
/// plain twin the tests hold this against.</para>
/// <para>Large products are split over <see cref="ComputeThreads.Max"/> threads by blocks of output
/// columns (or rows), run by the persistent workers of <see cref="ComputePool"/>; each element of C is still
/// summed in the same order, so results do not depend on the thread count. A small C with a long shared
/// dimension is split by blocks of that dimension instead (<see cref="DepthSplit"/>), with the same bits.</para>
/// <para>Products with at most 16 columns or rows, or with k at most 16 and too small to split over threads,
/// take <see cref="NarrowGemm"/>'s unpacked path, which sums every element exactly as the packed path does. On
/// AVX-512, products with at most 256 columns or 96 rows take <see cref="DirectGemm"/>, which reads A in place
/// instead of packing it, with the same sums.</para>
/// </remarks>
public static unsafe class Gemm
{
    private static readonly bool Use512 = Vector512.IsHardwareAccelerated;
    private static readonly bool Use256 = !Use512 && Vector256.IsHardwareAccelerated;

    /// <summary>Rows of the micro-kernel's register tile.</summary>
    public static readonly int MR = Use512 ? 8 : 6;
    /// <summary>Columns of the micro-kernel's register tile.</summary>
    public static readonly int NR = Use512 ? 32 : 16;

    // Cache blocking. A KC×NR micro-panel of packed B (32 KB at KC=256, NR=32) stays in L1 while the
    // micro-kernel sweeps the MC rows of packed A (96 KB) held in L2. Sweeps of KC ∈ {128..512},
    // MC ∈ {96, 192} and NC ∈ {1024, 2048} on the MLP shapes and 1024² moved results by less than the
    // noise of this shared machine, so the values stay simple.
    internal const int KC = 256;
    private const int MC = 96;
    internal const int NC = 2048;

    /// <summary>
    /// Below this many multiply-adds (m·n·k) the product runs on the calling thread only: smaller products finish
    /// before a second thread pays for its hand-off (measurements: docs/07-performance.md, "Decisions in the kernels").
    /// </summary>
    public const long ParallelThreshold = 1L << 18;

    /// <summary>When set, products that would take <see cref="DirectGemm"/> take the packed path instead: only for
    /// benchmarks that time the two side by side (<c>--gpt-gemm</c>).</summary>
    internal static bool DirectPathDisabled;

    /// <summary>When set, products that would be split by k (<see cref="DepthSplit"/>) split C instead: only for
    /// benchmarks that time the two side by side.</summary>
    internal static bool DepthSplitDisabled;

    /// <summary>When set, C of 256 rows or more is split by rows even when it is more than twice as wide as high (the
    /// rule before the wide split): only for benchmarks (<c>GEMM_VARIANTS</c> v3).</summary>
    internal static bool WideColumnSplitDisabled;

    [ThreadStatic] private static float[]? t_packA;
    [ThreadStatic] private static float[]? t_packB;

    /// <summary>
    /// Row-major <c>C[m×n] = alpha·op(A)·op(B) + beta·C</c>. op(A) is m×k: A is stored m×k
    /// (row stride <paramref name="lda"/>) or, when <paramref name="transA"/>, k×m. op(B) is k×n: B is
    /// stored k×n or, when <paramref name="transB"/>, n×k. When beta is 0, C is not read (BLAS semantics).
    /// </summary>
    /// <exception cref="ArgumentException">A size is negative, a leading dimension is too small, or a span is too
    /// short.</exception>
    public static void Multiply(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc) =>
        MultiplyWithEpilogue(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, default);

    /// <summary>
    /// <see cref="Multiply"/>, then <paramref name="epilogue"/> on C (a linear layer's bias and ReLU), applied by each
    /// thread to the block it computed.
    /// </summary>
    internal static void MultiplyWithEpilogue(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc,
        GemmEpilogue epilogue)
    {
        GemmArguments.Check(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        if (m == 0 || n == 0) return;
        fixed (float* pa = a, pb = b, pc = c)
        {
            long work = (long)m * n * k;
            int threads = work >= ParallelThreshold ? ComputeThreads.Max : 1;
            if (k == 0 || alpha == 0f) ScaleC(m, n, beta, pc, ldc);
            else if (NarrowGemm.Applies(m, n, k))
            {
                if (NarrowSplits(n, threads))
                {
                    RunParts(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, byColumns: true,
                        narrow: true, parts: Math.Min(threads, (n + NR - 1) / NR), threads, epilogue);
                    return;
                }
                NarrowGemm.Multiply(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
            }
            else if (threads > 1)
            {
                Split(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, threads, epilogue);
                return;
            }
            else Serial(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
            epilogue.Apply(pc, m, n, ldc, 0);
        }
    }

    /// <summary>
    /// Splits C into column (or row) blocks aligned to the register tile and runs them on
    /// <see cref="ComputePool"/>. Each part packs all of the operand it does not split. Below 256 rows columns
    /// are preferred: each part then packs only its own columns of B (the large operand in the MLP's forward
    /// and input-gradient products), and A, small at batch 64, is packed by each part. From 256 rows C is split
    /// by rows: packing A into 8-row panels costs more per element than copying B's panels, and with columns every
    /// part packed all of it; unless C is more than twice as wide as high (a language model's projections over a few
    /// hundred tokens, 256×576·576×1,536), where each part packing all of B costs more than each packing all of A
    /// (measurements: docs/07-performance.md, "Decisions in the kernels").
    /// </summary>
    private static void Split(bool transA, bool transB, int m, int n, int k, float alpha,
        float* pa, int lda, float* pb, int ldb, float beta, float* pc, int ldc, int threads, GemmEpilogue epilogue)
    {
        if (!DepthSplitDisabled && DepthSplit.Applies(m, n, k, threads))
        {
            DepthSplit.Multiply(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, threads, epilogue);
            return;
        }
        bool byColumns = SplitsByColumns(m, n, threads);
        int tiles = byColumns ? (n + NR - 1) / NR : (m + MR - 1) / MR;
        int parts = Math.Min(threads, tiles);
        if (parts <= 1)
        {
            Serial(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
            epilogue.Apply(pc, m, n, ldc, 0);
            return;
        }
        RunParts(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, byColumns, narrow: false, parts,
            threads, epilogue);
    }

    // C in `parts` blocks of whole tiles on the pool; a narrow product's blocks run NarrowGemm.
    private static void RunParts(bool transA, bool transB, int m, int n, int k, float alpha, float* pa, int lda,
        float* pb, int ldb, float beta, float* pc, int ldc, bool byColumns, bool narrow, int parts, int threads,
        GemmEpilogue epilogue)
    {
        int tiles = byColumns ? (n + NR - 1) / NR : (m + MR - 1) / MR;
        int tilesPer = (tiles + parts - 1) / parts;
        var job = t_job ??= new GemmJob();
        job.Set(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, byColumns,
            tilesPer * (byColumns ? NR : MR), narrow, epilogue);
        try { ComputePool.Run(job, (tiles + tilesPer - 1) / tilesPer, threads); }
        finally { job.Clear(); }
    }

    /// <summary>
    /// Whether a product that takes <see cref="NarrowGemm"/> is split over <paramref name="threads"/> threads by
    /// blocks of 32 columns: one with a few rows and many columns (a decoded token's projections, 1 × 576 · 576 ×
    /// 1,536, and its head, 1 × 49,152; LoRA's factor gradients, 8 × 576 over the tokens). Each block is a narrow
    /// product on its own, each element of C summed as the packed path sums it, so the bits stay those of one
    /// thread. It takes two blocks or more: more than 32 columns.
    /// </summary>
    internal static bool NarrowSplits(int n, int threads) => !NarrowSplitDisabled && threads > 1 && n > NR;

    /// <summary>For benchmarks and tests: narrow products on the calling thread only, as before they were
    /// split.</summary>
    internal static bool NarrowSplitDisabled;

    /// <summary>Whether <see cref="Split"/> cuts an m×n C into blocks of columns (else of rows) on
    /// <paramref name="threads"/> threads.</summary>
    internal static bool SplitsByColumns(int m, int n, int threads)
    {
        int tilesN = (n + NR - 1) / NR, tilesM = (m + MR - 1) / MR;
        bool wide = !WideColumnSplitDisabled && n > 2 * m;
        return (m < 256 || wide) && (tilesN >= tilesM || tilesN >= 2 * threads);
    }

    [ThreadStatic] private static GemmJob? t_job;

    /// <summary>One block of columns (or rows) of C per part; the operands stay pinned by the caller's
    /// <c>fixed</c>.</summary>
    private sealed class GemmJob : ComputeJob
    {
        private bool _transA, _transB, _byColumns, _narrow;
        private int _m, _n, _k, _lda, _ldb, _ldc, _step;
        private float _alpha, _beta;
        private float* _a, _b, _c;
        private GemmEpilogue _epilogue;

        public void Set(bool transA, bool transB, int m, int n, int k, float alpha, float* a, int lda, float* b,
            int ldb, float beta, float* c, int ldc, bool byColumns, int step, bool narrow, GemmEpilogue epilogue)
        {
            _transA = transA; _transB = transB; _m = m; _n = n; _k = k; _alpha = alpha; _beta = beta;
            _a = a; _lda = lda; _b = b; _ldb = ldb; _c = c; _ldc = ldc; _byColumns = byColumns; _step = step;
            _narrow = narrow; _epilogue = epilogue;
        }

        public void Clear() { _a = null; _b = null; _c = null; _epilogue = default; }

        public override void Execute(int part)
        {
            int start = part * _step;
            if (_byColumns)
            {
                if (start >= _n) return;
                int len = Math.Min(_step, _n - start);
                float* bj = _b + (_transB ? (long)start * _ldb : start);
                if (_narrow) NarrowGemm.Multiply(_transA, _transB, _m, len, _k, _alpha, _a, _lda, bj, _ldb, _beta,
                    _c + start, _ldc);
                else Serial(_transA, _transB, _m, len, _k, _alpha, _a, _lda, bj, _ldb, _beta, _c + start, _ldc);
                _epilogue.Apply(_c + start, _m, len, _ldc, start);
            }
            else
            {
                if (start >= _m) return;
                int len = Math.Min(_step, _m - start);
                float* ai = _a + (_transA ? start : (long)start * _lda);
                float* ci = _c + (long)start * _ldc;
                Serial(_transA, _transB, len, _n, _k, _alpha, ai, _lda, _b, _ldb, _beta, ci, _ldc);
                _epilogue.Apply(ci, len, _n, _ldc, 0);
            }
        }
    }

    internal static readonly MicroKernelKind DefaultKernel =
        Use512 ? MicroKernelKind.Vector512x8x32 : Use256 ? MicroKernelKind.Vector256x6x16 : MicroKernelKind.Scalar;

    /// <summary>The product on the calling thread: <see cref="DirectGemm"/> where it applies, else the packed
    /// path.</summary>
    internal static void Serial(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        if (!DirectPathDisabled && DirectGemm.Applies(m, n))
        {
            DirectGemm.Multiply(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        Serial(DefaultKernel, transA, m, n, k, alpha, a, lda, new FloatPanels(transB, b, ldb), beta, c, ldc);
    }

    /// <summary>The five loops on one thread with a chosen micro-kernel (<see cref="GemmStages"/> compares
    /// them).</summary>
    internal static void Serial(MicroKernelKind kernel, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc) =>
        Serial(kernel, transA, m, n, k, alpha, a, lda, new FloatPanels(transB, b, ldb), beta, c, ldc);

    /// <summary>The five loops on one thread, op(B) packed by <paramref name="b"/> (a float matrix, or a quantised
    /// weight expanded while it is packed: <see cref="QuantizedGemm"/>).</summary>
    internal static void Serial<TB>(MicroKernelKind kernel, bool transA, int m, int n, int k, float alpha,
        float* a, int lda, TB b, float beta, float* c, int ldc) where TB : struct, IPanelSourceB
    {
        int mr = kernel == MicroKernelKind.Vector256x6x16 ? 6 : kernel == MicroKernelKind.Vector512x8x32 ? 8 : MR;
        int nr = kernel == MicroKernelKind.Vector256x6x16 ? 16 : kernel == MicroKernelKind.Vector512x8x32 ? 32 : NR;
        int mcMax = MC / mr * mr;
        float[] packA = t_packA ??= GC.AllocateUninitializedArray<float>(MC * KC + 16, pinned: true);
        float[] packB = PackBufferB();
        fixed (float* unalignedA = packA, unalignedB = packB)
        {
            // Panels start on a 64-byte boundary (an array's data starts 16 bytes into the object): every
            // 64-byte load of a panel is then one cache line, not two.
            float* pA = Align64(unalignedA), pB = Align64(unalignedB);
            for (int jc = 0; jc < n; jc += NC)
            {
                int nc = Math.Min(NC, n - jc);
                for (int pc = 0; pc < k; pc += KC)
                {
                    int kc = Math.Min(KC, k - pc);
                    float betaEff = pc == 0 ? beta : 1f;
                    // With one block of rows (m ≤ MC, the MLP's batch of 64) every panel of B is used by all of A
                    // right after it is packed, so each panel is packed just before its use into the same KC×NR
                    // buffer, which stays in L1. Packing the whole KC×NC block first (512 KB for 64×256·256×512)
                    // took about a tenth of that product's time, and each panel had left L1 by its use.
                    bool panelByPanel = m <= mcMax;
                    if (!panelByPanel) b.Pack(pc, jc, kc, nc, nr, pB);
                    for (int ic = 0; ic < m; ic += mcMax)
                    {
                        int mc = Math.Min(mcMax, m - ic);
                        Packing.PackA(transA, a, lda, ic, pc, mc, kc, mr, pA);
                        for (int jr = 0; jr < nc; jr += nr)
                        {
                            int nrEff = Math.Min(nr, nc - jr);
                            float* panelB = pB + jr * kc;
                            if (panelByPanel)
                            {
                                panelB = pB;
                                b.Pack(pc, jc + jr, kc, nrEff, nr, panelB);
                            }
                            for (int ir = 0; ir < mc; ir += mr)
                            {
                                int mrEff = Math.Min(mr, mc - ir);
                                float* cTile = c + (long)(ic + ir) * ldc + jc + jr;
                                MicroKernel(kernel, kc, pA + ir * kc, panelB, cTile, ldc, mrEff, nrEff, mr, nr, alpha,
                                    betaEff);
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>This thread's pinned buffer for packed blocks of op(B): KC×(NC + 32) floats, and room to
    /// align.</summary>
    internal static float[] PackBufferB() =>
        t_packB ??= GC.AllocateUninitializedArray<float>(KC * (NC + 32) + 16, pinned: true);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float* Align64(float* p) => (float*)(((nint)p + 63) & ~(nint)63);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MicroKernel(MicroKernelKind kernel, int kc, float* pa, float* pb, float* c, int ldc,
        int mr, int nr,
        int tileRows, int tileColumns, float alpha, float beta)
    {
        if (kernel == MicroKernelKind.Vector512x8x32) MicroKernels.Kernel8x32(kc, pa, pb, c, ldc, mr, nr, alpha, beta);
        else if (kernel == MicroKernelKind.Vector256x6x16)
            MicroKernels.Kernel6x16(kc, pa, pb, c, ldc, mr, nr, alpha, beta);
        else MicroKernels.KernelScalar(kc, pa, pb, c, ldc, mr, nr, tileRows, tileColumns, alpha, beta);
    }

    private static void ScaleC(int m, int n, float beta, float* c, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + (long)i * ldc, n);
            if (beta == 0f) row.Clear();
            else if (beta != 1f) System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }
}
