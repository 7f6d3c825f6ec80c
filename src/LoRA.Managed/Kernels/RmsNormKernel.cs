using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Kernels;

/// <summary>
/// Root-mean-square layer normalisation (Zhang &amp; Sennrich 2019, "Root Mean Square Layer Normalization", eq. 4),
/// as Hugging Face's <c>LlamaRMSNorm</c>: per row of C values, <c>r = 1/√(mean(x²) + ε)</c>, <c>y = w ⊙ (x·r)</c>.
/// Backward with <c>x̂ = x·r</c> and <c>g = ∂y ⊙ w</c>: <c>∂x = r·(g − x̂·mean(g ⊙ x̂))</c>, <c>∂w = Σ_rows ∂y ⊙
/// x̂</c>. <see cref="LlamaKernelsReference"/> holds the scalar twins.
/// </summary>
public static class RmsNormKernel
{
    /// <summary>Writes y (rows × cols) and each row's r into <paramref name="rstd"/>; y may alias x.</summary>
    /// <exception cref="ArgumentException">A span does not fit rows × cols.</exception>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, Span<float> rstd,
        int rows, int cols, float eps)
    {
        Check(x.Length, y.Length, weight.Length, rstd.Length, rows, cols);
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> xr = x.Slice(r * cols, cols);
            Span<float> yr = y.Slice(r * cols, cols);
            float s = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(xr) / cols + eps);
            rstd[r] = s;
            TensorPrimitives.Multiply(xr, s, yr);
            TensorPrimitives.Multiply(yr, weight, yr);
        }
    }

    /// <summary>
    /// Accumulates ∂x and ∂w (either may be empty when not wanted); <paramref name="scratch"/> holds at least
    /// 2·cols floats.
    /// </summary>
    /// <exception cref="ArgumentException">A span does not fit rows × cols.</exception>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> rstd, ReadOnlySpan<float> dy,
        Span<float> dx, Span<float> dw, int rows, int cols, Span<float> scratch)
    {
        Check(x.Length, dy.Length, weight.Length, rstd.Length, rows, cols);
        if ((!dx.IsEmpty && dx.Length != x.Length) || (!dw.IsEmpty && dw.Length != cols) || scratch.Length < 2 * cols)
            throw new ArgumentException($"RmsNormKernel.Backward: dx {dx.Length}, dw {dw.Length}, scratch {scratch.Length} do not fit {rows}×{cols}.");
        Span<float> xhat = scratch.Slice(0, cols), g = scratch.Slice(cols, cols);
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> xr = x.Slice(r * cols, cols), dyr = dy.Slice(r * cols, cols);
            float s = rstd[r];
            TensorPrimitives.Multiply(xr, s, xhat);
            if (!dw.IsEmpty) TensorPrimitives.FusedMultiplyAdd(dyr, xhat, dw, dw);
            if (dx.IsEmpty) continue;
            TensorPrimitives.Multiply(dyr, weight, g);
            float mean = TensorPrimitives.Dot(g, xhat) / cols;
            // ∂x += s·g − (s·mean)·x̂
            Span<float> dxr = dx.Slice(r * cols, cols);
            TensorPrimitives.Multiply(xhat, -s * mean, xhat);
            TensorPrimitives.FusedMultiplyAdd(g, s, xhat, xhat);
            TensorPrimitives.Add(dxr, xhat, dxr);
        }
    }

    private static void Check(int x, int y, int w, int rstd, int rows, int cols)
    {
        if (rows < 0 || cols <= 0 && rows > 0 || (long)rows * cols != x || y != x || w != cols || rstd != rows)
            throw new ArgumentException($"RmsNormKernel: x {x}, y/dy {y}, weight {w}, rstd {rstd} do not fit {rows}×{cols}.");
    }
}
