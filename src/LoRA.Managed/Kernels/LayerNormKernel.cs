using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Kernels;

/// <summary>
/// Layer normalisation over the last dimension (Ba, Kiros &amp; Hinton, "Layer Normalization", 2016),
/// as <c>torch.nn.LayerNorm</c>: for each row x of length C,
/// <c>μ = Σx/C</c>, <c>σ² = Σ(x − μ)²/C</c> (biased, as torch), <c>x̂ = (x − μ)/√(σ² + ε)</c>, <c>y = x̂⊙w + b</c>.
/// The forward saves μ and <c>rstd = 1/√(σ² + ε)</c> per row for the backward (as llm.c's <c>layernorm_forward</c>).
/// <see cref="TransformerKernelsReference"/> holds the scalar twins.
/// </summary>
public static unsafe class LayerNormKernel
{
    // Rows per thread at least this many elements' worth: below, a second thread costs more than it saves.
    private const int MinElementsPerThread = 16 * 1024;

    // Widest row whose backward scratch (2 rows) a parallel part keeps on its stack; wider rows run serially.
    private const int MaxStackColumns = 4096;

    /// <summary>
    /// Normalises each of the <paramref name="rows"/> rows of x (rows, cols) into y, which must not overlap x,
    /// and writes each row's mean and reciprocal standard deviation.
    /// </summary>
    /// <exception cref="ArgumentException">A span's length does not match rows × cols.</exception>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias,
        Span<float> y, Span<float> mean, Span<float> rstd, int rows, int cols, float eps = 1e-5f)
    {
        Check(x.Length, weight.Length, bias.Length, y.Length, mean.Length, rstd.Length, rows, cols);
        if (cols == 0) return;
        // Rows are independent: split over threads, the bits do not depend on how many.
        fixed (float* px = x, pw = weight, pb = bias, py = y, pm = mean, pr = rstd)
            ParallelRange.For(new ForwardBody(px, pw, pb, py, pm, pr, cols, eps), rows, 1, MinRows(cols));
    }

    private static int MinRows(int cols) => Math.Max(1, MinElementsPerThread / cols);

    private readonly struct ForwardBody(float* x, float* w, float* b, float* y, float* mean, float* rstd, int cols,
        float eps)
        : IRangeBody
    {
        public void Run(int start, int end) => ForwardRows(x, w, b, y, mean, rstd, cols, eps, start, end);
    }

    private static void ForwardRows(float* px, float* pw, float* pb, float* py, float* pm, float* pr, int cols,
        float eps,
        int start, int end)
    {
        if (RowMask.IsSupported)
        {
            for (long r = start; r < end; r++)
                LayerNormRow.Forward(px + r * cols, pw, pb, py + r * cols, cols, eps, out pm[r], out pr[r]);
            return;
        }
        var weight = new ReadOnlySpan<float>(pw, cols);
        var bias = new ReadOnlySpan<float>(pb, cols);
        for (int r = start; r < end; r++)
        {
            var xr = new ReadOnlySpan<float>(px + (long)r * cols, cols);
            var yr = new Span<float>(py + (long)r * cols, cols);
            // Two passes (mean, then squared deviations) rather than E[x²] − μ², which cancels badly
            // when |μ| ≫ σ; y serves as the scratch row.
            float m = TensorPrimitives.Sum(xr) / cols;
            TensorPrimitives.Subtract(xr, m, yr);
            float variance = TensorPrimitives.SumOfSquares(yr) / cols;
            float s = 1f / MathF.Sqrt(variance + eps);
            TensorPrimitives.Multiply(yr, s, yr);
            TensorPrimitives.FusedMultiplyAdd(yr, weight, bias, yr);
            pm[r] = m;
            pr[r] = s;
        }
    }

    /// <summary>
    /// Accumulates the gradients: with <c>g = ∂y⊙w</c>,
    /// <c>∂x += rstd·(g − mean(g) − x̂·mean(g⊙x̂))</c>, <c>∂w += Σ_rows ∂y⊙x̂</c>, <c>∂b += Σ_rows ∂y</c>.
    /// Any of dx, dw, db may be empty to skip it. <paramref name="scratch"/> needs 2·cols floats. With
    /// <paramref name="overwriteDx"/> dx is written instead of added to (a gradient that is still zero: no clearing,
    /// no reading back; the same bits as adding to zeros).
    /// </summary>
    /// <exception cref="ArgumentException">A span's length does not match rows × cols.</exception>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> mean,
        ReadOnlySpan<float> rstd,
        ReadOnlySpan<float> dy, Span<float> dx, Span<float> dw, Span<float> db, int rows, int cols, Span<float> scratch,
        bool overwriteDx = false)
    {
        Check(x.Length, weight.Length, weight.Length, dy.Length, mean.Length, rstd.Length, rows, cols);
        if ((!dx.IsEmpty && dx.Length != x.Length) || (!dw.IsEmpty && dw.Length != cols)
            || (!db.IsEmpty && db.Length != cols) || scratch.Length < 2 * cols)
            throw new ArgumentException($"LayerNormKernel.Backward: dx {dx.Length}, dw {dw.Length}, db {db.Length}, " +
                $"scratch {scratch.Length} do not fit {rows}×{cols}.");
        if (cols == 0) return;
        Span<float> xhat = scratch.Slice(0, cols), g = scratch.Slice(cols, cols);
        bool splitDx = !dx.IsEmpty && cols <= MaxStackColumns && ComputeThreads.Max > 1 && rows >= 2 * MinRows(cols);
        if (splitDx)
        {
            // dx row by row on every thread; dw and db, sums over rows in row order, below.
            fixed (float* px = x, pw = weight, pm = mean, pr = rstd, pdy = dy, pdx = dx)
                ParallelRange.For(new BackwardBody(px, pw, pm, pr, pdy, pdx, cols, overwriteDx), rows, 1,
                    MinRows(cols));
        }
        if (RowMask.IsSupported && splitDx && cols > 16 && !(dw.IsEmpty && db.IsEmpty))
        {
            // dw and db too on every thread, each taking whole columns (16 at a time) over all rows in row order:
            // every column's sum is the serial loop's, so the bits are too.
            fixed (float* px = x, pm = mean, pr = rstd, pdy = dy, pdw = dw, pdb = db)
                ParallelRange.For(new ParameterBody(px, pm, pr, pdy, pdw, pdb, rows, cols), (cols + 15) / 16, 1, 1);
            return;
        }
        bool rowDx = !dx.IsEmpty && !splitDx;
        if (db.IsEmpty && dw.IsEmpty && !rowDx) return;   // dx (if wanted) was computed above: nothing left per row
        if (RowMask.IsSupported)
        {
            // One fused pass per row; dw and db summed over rows in row order, as the split case leaves them.
            fixed (float* px = x, pw = weight, pdy = dy, pdx = dx, pdw = dw, pdb = db)
                for (long r = 0; r < rows; r++)
                    LayerNormRow.Backward(px + r * cols, pw, mean[(int)r], rstd[(int)r], pdy + r * cols,
                        rowDx ? pdx + r * cols : null, pdw, pdb, cols, overwriteDx);
            return;
        }
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> xr = x.Slice(r * cols, cols), dyr = dy.Slice(r * cols, cols);
            TensorPrimitives.Subtract(xr, mean[r], xhat);
            TensorPrimitives.Multiply(xhat, rstd[r], xhat);
            if (!db.IsEmpty) TensorPrimitives.Add(db, dyr, db);
            if (!dw.IsEmpty) TensorPrimitives.FusedMultiplyAdd(dyr, xhat, dw, dw);
            if (rowDx) InputGradientRow(dyr, weight, xhat, g, rstd[r], dx.Slice(r * cols, cols), overwriteDx);
        }
    }

    private readonly struct ParameterBody(float* x, float* mean, float* rstd, float* dy, float* dw, float* db,
        int rows, int cols)
        : IRangeBody
    {
        public void Run(int start, int end) =>
            LayerNormRow.ParameterGradients(x, mean, rstd, dy, dw, db, rows, cols, start * 16,
                Math.Min(cols, end * 16));
    }

    private readonly struct BackwardBody(float* x, float* w, float* mean, float* rstd, float* dy, float* dx, int cols,
        bool overwrite)
        : IRangeBody
    {
        public void Run(int start, int end)
        {
            if (RowMask.IsSupported)
            {
                for (long r = start; r < end; r++)
                    LayerNormRow.Backward(x + r * cols, w, mean[r], rstd[r], dy + r * cols, dx + r * cols, null, null,
                        cols, overwrite);
                return;
            }
            Span<float> scratch = stackalloc float[2 * cols];
            Span<float> xhat = scratch.Slice(0, cols), g = scratch.Slice(cols, cols);
            var weight = new ReadOnlySpan<float>(w, cols);
            for (int r = start; r < end; r++)
            {
                TensorPrimitives.Subtract(new ReadOnlySpan<float>(x + (long)r * cols, cols), mean[r], xhat);
                TensorPrimitives.Multiply(xhat, rstd[r], xhat);
                InputGradientRow(new ReadOnlySpan<float>(dy + (long)r * cols, cols), weight, xhat, g, rstd[r],
                    new Span<float>(dx + (long)r * cols, cols), overwrite);
            }
        }
    }

    /// <summary>One row of <c>dx += rstd·(g − mean(g) − x̂·mean(g·x̂))</c> with <c>g = dy·w</c>.</summary>
    private static void InputGradientRow(ReadOnlySpan<float> dyr, ReadOnlySpan<float> weight, ReadOnlySpan<float> xhat,
        Span<float> g, float rstd, Span<float> dxr, bool overwrite)
    {
        int cols = g.Length;
        TensorPrimitives.Multiply(dyr, weight, g);
        float meanG = TensorPrimitives.Sum(g) / cols;
        float meanGx = TensorPrimitives.Dot(g, xhat) / cols;
        // g ← g − meanG − x̂·meanGx, then dx += rstd·g.
        TensorPrimitives.Subtract(g, meanG, g);
        TensorPrimitives.FusedMultiplyAdd(xhat, -meanGx, g, g);
        if (overwrite) TensorPrimitives.Multiply(g, rstd, dxr);
        else TensorPrimitives.FusedMultiplyAdd(g, rstd, dxr, dxr);
    }

    private static void Check(int x, int w, int b, int y, int mean, int rstd, int rows, int cols)
    {
        if (rows < 0 || cols < 0 || (long)rows * cols != x || y != x || w != cols || b != cols || mean != rows
            || rstd != rows)
            throw new ArgumentException($"LayerNormKernel: x {x}, weight {w}, bias {b}, y/dy {y}, mean {mean}, rstd " +
                $"{rstd} do not fit {rows}×{cols}.");
    }
}
