namespace LoRA.Managed.Kernels;

/// <summary>
/// The frozen quantised linear layer's products with many rows of activations, W being a
/// <see cref="QuantizedMatrix"/> <c>[out, in]</c>: the weight is expanded one row block (panel) at a time into a
/// caller's small scratch and handed to <see cref="Gemm.Multiply"/>, so the whole float matrix never exists.
/// </summary>
/// <remarks>
/// First step of issue 16: the panel is expanded into a plain row-major scratch that the GEMM then packs again;
/// expanding straight into the packed-B layout would save that copy. A panel of about
/// <see cref="PanelFloats"/> floats (2 MiB) keeps the number of GEMM calls, each of which repacks the
/// activations, to a handful for GPT-2-sized layers. A single row (decoding) goes to
/// <see cref="QuantizedMatrix.MultiplyVector"/> instead.
/// </remarks>
public static unsafe class QuantizedGemm
{
    /// <summary>
    /// Expands <paramref name="block"/>.Length elements of <paramref name="w"/> from <paramref name="start"/>, split
    /// over threads: with a serial expansion beside a two-thread GEMM the products ran at 0.4-0.7x the float GEMM on
    /// two threads. Each element is expanded alone, so the split changes no bit.
    /// </summary>
    private static void Expand(QuantizedMatrix w, long start, Span<float> block)
    {
        fixed (float* p = block)
            ParallelRange.For(new ExpandBody(w, start, p), block.Length, 64, 32 * 1024);
    }

    private readonly struct ExpandBody(QuantizedMatrix w, long start, float* destination) : IRangeBody
    {
        public void Run(int from, int to) => w.ExpandRange(start + from, new Span<float>(destination + from, to - from));
    }

    /// <summary>Floats of scratch a panel aims at.</summary>
    public const int PanelFloats = 1 << 19;

    /// <summary>Rows of W per panel: about <see cref="PanelFloats"/> floats of <paramref name="w"/>.</summary>
    public static int PanelRows(QuantizedMatrix w)
    {
        ArgumentNullException.ThrowIfNull(w);
        int rows = Math.Max(1, PanelFloats / Math.Max(1, w.Columns));
        if (rows >= 16) rows -= rows % 16; // whole micro-tile columns of the GEMM
        return Math.Clamp(rows, 1, Math.Max(1, w.Rows));
    }

    /// <summary>The scratch length <see cref="MultiplyTransposed"/> and <see cref="MultiplyAccumulate"/>
    /// need.</summary>
    public static int ScratchLength(QuantizedMatrix w) => PanelRows(w) * w.Columns;

    /// <summary><c>y = x·Wᵀ</c>: x is <c>[n, in]</c>, y <c>[n, out]</c> (overwritten), both row-major.</summary>
    public static void MultiplyTransposed(QuantizedMatrix w, int n, ReadOnlySpan<float> x, Span<float> y,
        Span<float> scratch)
    {
        Check(w, n, x.Length, y.Length, scratch.Length, nameof(MultiplyTransposed));
        int rows = w.Rows, cols = w.Columns;
        if (n == 0 || rows == 0) return;
        if (n == 1)
        {
            w.MultiplyVector(x[..cols], y[..rows]);
            return;
        }
        int panel = PanelRows(w);
        for (int r0 = 0; r0 < rows; r0 += panel)
        {
            int rb = Math.Min(panel, rows - r0);
            Span<float> block = scratch[..(rb * cols)];
            Expand(w, (long)r0 * cols, block);
            // y[:, r0:r0+rb] = x · block ᵀ, written in place through ldc = rows.
            Gemm.Multiply(false, true, n, rb, cols, 1f, x, cols, block, cols, 0f, y[r0..], rows);
        }
    }

    /// <summary><c>dx += dy·W</c>: dy is <c>[n, out]</c>, dx <c>[n, in]</c>, both row-major.</summary>
    public static void MultiplyAccumulate(QuantizedMatrix w, int n, ReadOnlySpan<float> dy, Span<float> dx,
        Span<float> scratch)
    {
        Check(w, n, dx.Length, dy.Length, scratch.Length, nameof(MultiplyAccumulate));
        int rows = w.Rows, cols = w.Columns;
        if (n == 0 || rows == 0 || cols == 0) return;
        if (n == 1)
        {
            w.MultiplyVectorTransposedAccumulate(dy[..rows], dx[..cols]);
            return;
        }
        int panel = PanelRows(w);
        for (int r0 = 0; r0 < rows; r0 += panel)
        {
            int rb = Math.Min(panel, rows - r0);
            Span<float> block = scratch[..(rb * cols)];
            Expand(w, (long)r0 * cols, block);
            // dx += dy[:, r0:r0+rb] · block, the panel's share of the sum over output rows.
            Gemm.Multiply(false, false, n, cols, rb, 1f, dy[r0..], rows, block, cols, 1f, dx, cols);
        }
    }

    private static void Check(QuantizedMatrix w, int n, int inputs, int outputs, int scratch, string what)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (n < 0 || inputs < (long)n * w.Columns || outputs < (long)n * w.Rows
            || (n > 1 && scratch < ScratchLength(w)))
            throw new ArgumentException($"QuantizedGemm.{what}: {n} rows against W [{w.Rows}, {w.Columns}] need "
                + $"{(long)n * w.Columns} inputs, {(long)n * w.Rows} outputs and {ScratchLength(w)} scratch; "
                + $"got {inputs}, {outputs} and {scratch}.");
    }
}
