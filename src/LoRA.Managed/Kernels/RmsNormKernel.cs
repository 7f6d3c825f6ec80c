using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Kernels;

/// <summary>
/// Root-mean-square layer normalisation (Zhang &amp; Sennrich 2019, "Root Mean Square Layer Normalization", eq. 4),
/// as Hugging Face's <c>LlamaRMSNorm</c>: per row of C values, <c>r = 1/√(mean(x²) + ε)</c>, <c>y = w ⊙ (x·r)</c>.
/// Backward with <c>x̂ = x·r</c> and <c>g = ∂y ⊙ w</c>: <c>∂x = r·(g − x̂·mean(g ⊙ x̂))</c>, <c>∂w = Σ_rows ∂y ⊙
/// x̂</c>. <see cref="LlamaKernelsReference"/> holds the scalar twins.
/// </summary>
public static unsafe class RmsNormKernel
{
    // Rows per thread at least this many elements' worth: below, a second thread costs more than it saves.
    private const int MinElementsPerThread = 16 * 1024;

    // Widest row whose backward scratch (2 rows) a parallel part keeps on its stack; wider rows run serially.
    private const int MaxStackColumns = 4096;

    /// <summary>Writes y (rows × cols) and each row's r into <paramref name="rstd"/>; y may alias x.</summary>
    /// <exception cref="ArgumentException">A span does not fit rows × cols.</exception>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, Span<float> rstd,
        int rows, int cols, float eps)
    {
        Check(x.Length, y.Length, weight.Length, rstd.Length, rows, cols);
        if (cols == 0) return;
        // Rows are independent: split over threads, the bits do not depend on how many.
        fixed (float* px = x, pw = weight, py = y, pr = rstd)
            ParallelRange.For(new ForwardBody(px, pw, py, pr, cols, eps), rows, 1, MinRows(cols));
    }

    private static int MinRows(int cols) => Math.Max(1, MinElementsPerThread / Math.Max(1, cols));

    private readonly struct ForwardBody(float* x, float* w, float* y, float* rstd, int cols, float eps) : IRangeBody
    {
        public void Run(int start, int end)
        {
            var weight = new ReadOnlySpan<float>(w, cols);
            for (int r = start; r < end; r++)
            {
                var xr = new ReadOnlySpan<float>(x + (long)r * cols, cols);
                var yr = new Span<float>(y + (long)r * cols, cols);
                float s = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(xr) / cols + eps);
                rstd[r] = s;
                TensorPrimitives.Multiply(xr, s, yr);
                TensorPrimitives.Multiply(yr, weight, yr);
            }
        }
    }

    /// <summary>
    /// Accumulates ∂x and ∂w (either may be empty when not wanted); <paramref name="scratch"/> holds at least
    /// 2·cols floats.
    /// </summary>
    /// <exception cref="ArgumentException">A span does not fit rows × cols.</exception>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> rstd,
        ReadOnlySpan<float> dy,
        Span<float> dx, Span<float> dw, int rows, int cols, Span<float> scratch)
    {
        Check(x.Length, dy.Length, weight.Length, rstd.Length, rows, cols);
        if ((!dx.IsEmpty && dx.Length != x.Length) || (!dw.IsEmpty && dw.Length != cols) || scratch.Length < 2 * cols)
            throw new ArgumentException($"RmsNormKernel.Backward: dx {dx.Length}, dw {dw.Length}, scratch " +
                $"{scratch.Length} do not fit {rows}×{cols}.");
        if (cols == 0) return;
        Span<float> xhat = scratch.Slice(0, cols), g = scratch.Slice(cols, cols);
        bool splitDx = !dx.IsEmpty && cols <= MaxStackColumns && ComputeThreads.Max > 1 && rows >= 2 * MinRows(cols);
        if (splitDx)
        {
            // dx row by row on every thread; dw, a sum over rows, below on this thread in row order, so the bits are
            // the serial loop's.
            fixed (float* px = x, pw = weight, pr = rstd, pdy = dy, pdx = dx)
                ParallelRange.For(new BackwardBody(px, pw, pr, pdy, pdx, cols), rows, 1, MinRows(cols));
        }
        for (int r = 0; r < rows; r++)
        {
            if (dw.IsEmpty && (dx.IsEmpty || splitDx)) break;
            ReadOnlySpan<float> xr = x.Slice(r * cols, cols), dyr = dy.Slice(r * cols, cols);
            float s = rstd[r];
            TensorPrimitives.Multiply(xr, s, xhat);
            if (!dw.IsEmpty) TensorPrimitives.FusedMultiplyAdd(dyr, xhat, dw, dw);
            if (dx.IsEmpty || splitDx) continue;
            InputGradientRow(dyr, weight, xhat, g, s, dx.Slice(r * cols, cols));
        }
    }

    private readonly struct BackwardBody(float* x, float* w, float* rstd, float* dy, float* dx, int cols) : IRangeBody
    {
        public void Run(int start, int end)
        {
            Span<float> scratch = stackalloc float[2 * cols];
            Span<float> xhat = scratch.Slice(0, cols), g = scratch.Slice(cols, cols);
            var weight = new ReadOnlySpan<float>(w, cols);
            for (int r = start; r < end; r++)
            {
                float s = rstd[r];
                TensorPrimitives.Multiply(new ReadOnlySpan<float>(x + (long)r * cols, cols), s, xhat);
                InputGradientRow(new ReadOnlySpan<float>(dy + (long)r * cols, cols), weight, xhat, g, s,
                    new Span<float>(dx + (long)r * cols, cols));
            }
        }
    }

    /// <summary>One row of <c>∂x += s·g − (s·mean(g·x̂))·x̂</c> with <c>g = dy·w</c>; x̂ is overwritten.</summary>
    private static void InputGradientRow(ReadOnlySpan<float> dyr, ReadOnlySpan<float> weight, Span<float> xhat,
        Span<float> g, float s, Span<float> dxr)
    {
        TensorPrimitives.Multiply(dyr, weight, g);
        float mean = TensorPrimitives.Dot(g, xhat) / g.Length;
        TensorPrimitives.Multiply(xhat, -s * mean, xhat);
        TensorPrimitives.FusedMultiplyAdd(g, s, xhat, xhat);
        TensorPrimitives.Add(dxr, xhat, dxr);
    }

    private static void Check(int x, int y, int w, int rstd, int rows, int cols)
    {
        if (rows < 0 || cols <= 0 && rows > 0 || (long)rows * cols != x || y != x || w != cols || rstd != rows)
            throw new ArgumentException($"RmsNormKernel: x {x}, y/dy {y}, weight {w}, rstd {rstd} do " +
                $"not fit {rows}×{cols}.");
    }
}
