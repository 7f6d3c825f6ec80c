namespace LoRA.Managed.Kernels;

/// <summary>
/// The frozen quantised linear layer's products with many rows of activations, W being a
/// <see cref="QuantizedMatrix"/> <c>[out, in]</c>: <see cref="Gemm"/>'s own five loops, with op(B)'s panels expanded
/// from W while they are packed (<see cref="QuantizedPanels"/>), so nothing expands the whole matrix and no element is
/// expanded and then copied again. <see cref="QuantReference"/> is the twin (W dequantised whole, then multiplied).
/// </summary>
/// <remarks>
/// <para>On more than one thread the output's columns are split in blocks of the register tile, one part per thread
/// on <see cref="ComputePool"/>: each part expands only its own share of W (rows of W for the forward, columns for
/// the input gradient) and packs all of the activations, which at 256 rows are a few times smaller than W. Splitting
/// rows, as <see cref="Gemm"/> does from 256 rows, would make every part expand all of W.</para>
/// <para>Every element of the output is summed in the order <see cref="Gemm.Multiply"/> sums it over the dequantised
/// W, whatever the split, so the bits do not depend on the thread count. A single row (decoding) goes to
/// <see cref="QuantizedMatrix.MultiplyVector"/> instead.</para>
/// </remarks>
public static unsafe class QuantizedGemm
{
    /// <summary><c>y = x·Wᵀ</c>: x is <c>[n, in]</c>, y <c>[n, out]</c> (overwritten), both row-major.</summary>
    /// <exception cref="ArgumentException">A span is too short for n rows.</exception>
    public static void MultiplyTransposed(QuantizedMatrix w, int n, ReadOnlySpan<float> x, Span<float> y)
    {
        Check(w, n, x.Length, y.Length, nameof(MultiplyTransposed));
        int rows = w.Rows, cols = w.Columns;
        if (n == 0 || rows == 0) return;
        if (n == 1)
        {
            w.MultiplyVector(x[..cols], y[..rows]);
            return;
        }
        if (cols == 0)
        {
            y[..(n * rows)].Clear();
            return;
        }
        fixed (float* px = x, py = y)
            Run(w, transposed: true, n, rows, cols, px, cols, 0f, py, rows);
    }

    /// <summary><c>dx = dy·W + β·dx</c> (β = 1, the default, accumulates; β = 0 overwrites a gradient that is still
    /// zero, as <see cref="Gemm.Multiply"/>'s β): dy is <c>[n, out]</c>, dx <c>[n, in]</c>, both row-major.</summary>
    /// <exception cref="ArgumentException">A span is too short for n rows, or β is neither 0 nor 1.</exception>
    public static void MultiplyAccumulate(QuantizedMatrix w, int n, ReadOnlySpan<float> dy, Span<float> dx,
        float beta = 1f)
    {
        Check(w, n, dx.Length, dy.Length, nameof(MultiplyAccumulate));
        if (beta is not (0f or 1f))
            throw new ArgumentException($"QuantizedGemm.MultiplyAccumulate: β is 0 or 1, got {beta}.");
        int rows = w.Rows, cols = w.Columns;
        if (n == 0 || cols == 0) return;
        if (beta == 0f && (n == 1 || rows == 0)) dx[..(n * cols)].Clear();
        if (rows == 0) return;
        if (n == 1)
        {
            w.MultiplyVectorTransposedAccumulate(dy[..rows], dx[..cols]);
            return;
        }
        fixed (float* pdy = dy, pdx = dx)
            Run(w, transposed: false, n, cols, rows, pdy, rows, beta, pdx, cols);
    }

    // C[m×n] = A·op(B) + beta·C with op(B) = Wᵀ (transposed) or W, split by columns of C over the threads.
    private static void Run(QuantizedMatrix w, bool transposed, int m, int n, int k, float* a, int lda, float beta,
        float* c, int ldc)
    {
        int threads = (long)m * n * k >= Gemm.ParallelThreshold ? ComputeThreads.Max : 1;
        int tiles = (n + Gemm.NR - 1) / Gemm.NR, parts = Math.Min(threads, tiles);
        if (parts <= 1)
        {
            Gemm.Serial(Gemm.DefaultKernel, false, m, n, k, 1f, a, lda, new QuantizedPanels(w, transposed, 0), beta,
                c, ldc);
            return;
        }
        var job = t_job ??= new ColumnsJob();
        job.Set(w, transposed, m, n, k, a, lda, beta, c, ldc, (tiles + parts - 1) / parts * Gemm.NR);
        try { ComputePool.Run(job, parts, threads); }
        finally { job.Clear(); }
    }

    [ThreadStatic] private static ColumnsJob? t_job;

    /// <summary>One block of output columns per part; the operands stay pinned by the caller's <c>fixed</c>.</summary>
    private sealed class ColumnsJob : ComputeJob
    {
        private QuantizedMatrix? _w;
        private bool _transposed;
        private int _m, _n, _k, _lda, _ldc, _step;
        private float _beta;
        private float* _a, _c;

        public void Set(QuantizedMatrix w, bool transposed, int m, int n, int k, float* a, int lda, float beta,
            float* c, int ldc, int step)
        {
            _w = w; _transposed = transposed; _m = m; _n = n; _k = k; _a = a; _lda = lda; _beta = beta; _c = c;
            _ldc = ldc; _step = step;
        }

        public void Clear() { _w = null; _a = null; _c = null; }

        public override void Execute(int part)
        {
            int start = part * _step;
            if (start >= _n) return;
            int len = Math.Min(_step, _n - start);
            Gemm.Serial(Gemm.DefaultKernel, false, _m, len, _k, 1f, _a, _lda,
                new QuantizedPanels(_w!, _transposed, start), _beta, _c + start, _ldc);
        }
    }

    private static void Check(QuantizedMatrix w, int n, int inputs, int outputs, string what)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (n < 0 || inputs < (long)n * w.Columns || outputs < (long)n * w.Rows)
            throw new ArgumentException($"QuantizedGemm.{what}: {n} rows against W [{w.Rows}, {w.Columns}] need "
                + $"{(long)n * w.Columns} inputs and {(long)n * w.Rows} outputs; got {inputs} and {outputs}.");
    }
}
