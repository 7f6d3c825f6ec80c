using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Kernels;

/// <summary>
/// Layer normalisation over the last dimension (Ba, Kiros &amp; Hinton, "Layer Normalization", 2016),
/// as <c>torch.nn.LayerNorm</c>: for each row x of length C,
/// <c>μ = Σx/C</c>, <c>σ² = Σ(x − μ)²/C</c> (biased, as torch), <c>x̂ = (x − μ)/√(σ² + ε)</c>, <c>y = x̂⊙w + b</c>.
/// The forward saves μ and <c>rstd = 1/√(σ² + ε)</c> per row for the backward (as llm.c's <c>layernorm_forward</c>).
/// <see cref="TransformerKernelsReference"/> holds the scalar twins.
/// </summary>
public static class LayerNormKernel
{
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
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> xr = x.Slice(r * cols, cols);
            Span<float> yr = y.Slice(r * cols, cols);
            // Two passes (mean, then squared deviations) rather than E[x²] − μ², which cancels badly
            // when |μ| ≫ σ; y serves as the scratch row.
            float m = TensorPrimitives.Sum(xr) / cols;
            TensorPrimitives.Subtract(xr, m, yr);
            float variance = TensorPrimitives.SumOfSquares(yr) / cols;
            float s = 1f / MathF.Sqrt(variance + eps);
            TensorPrimitives.Multiply(yr, s, yr);
            TensorPrimitives.FusedMultiplyAdd(yr, weight, bias, yr);
            mean[r] = m;
            rstd[r] = s;
        }
    }

    /// <summary>
    /// Accumulates the gradients: with <c>g = ∂y⊙w</c>,
    /// <c>∂x += rstd·(g − mean(g) − x̂·mean(g⊙x̂))</c>, <c>∂w += Σ_rows ∂y⊙x̂</c>, <c>∂b += Σ_rows ∂y</c>.
    /// Any of dx, dw, db may be empty to skip it. <paramref name="scratch"/> needs 2·cols floats.
    /// </summary>
    /// <exception cref="ArgumentException">A span's length does not match rows × cols.</exception>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd,
        ReadOnlySpan<float> dy, Span<float> dx, Span<float> dw, Span<float> db, int rows, int cols, Span<float> scratch)
    {
        Check(x.Length, weight.Length, weight.Length, dy.Length, mean.Length, rstd.Length, rows, cols);
        if ((!dx.IsEmpty && dx.Length != x.Length) || (!dw.IsEmpty && dw.Length != cols) || (!db.IsEmpty && db.Length != cols) || scratch.Length < 2 * cols)
            throw new ArgumentException($"LayerNormKernel.Backward: dx {dx.Length}, dw {dw.Length}, db {db.Length}, scratch {scratch.Length} do not fit {rows}×{cols}.");
        if (cols == 0) return;
        Span<float> xhat = scratch.Slice(0, cols), g = scratch.Slice(cols, cols);
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> xr = x.Slice(r * cols, cols), dyr = dy.Slice(r * cols, cols);
            TensorPrimitives.Subtract(xr, mean[r], xhat);
            TensorPrimitives.Multiply(xhat, rstd[r], xhat);
            if (!db.IsEmpty) TensorPrimitives.Add(db, dyr, db);
            if (!dw.IsEmpty) TensorPrimitives.FusedMultiplyAdd(dyr, xhat, dw, dw);
            if (dx.IsEmpty) continue;
            TensorPrimitives.Multiply(dyr, weight, g);
            float meanG = TensorPrimitives.Sum(g) / cols;
            float meanGx = TensorPrimitives.Dot(g, xhat) / cols;
            // g ← g − meanG − x̂·meanGx, then dx += rstd·g.
            TensorPrimitives.Subtract(g, meanG, g);
            TensorPrimitives.FusedMultiplyAdd(xhat, -meanGx, g, g);
            Span<float> dxr = dx.Slice(r * cols, cols);
            TensorPrimitives.FusedMultiplyAdd(g, rstd[r], dxr, dxr);
        }
    }

    private static void Check(int x, int w, int b, int y, int mean, int rstd, int rows, int cols)
    {
        if (rows < 0 || cols < 0 || (long)rows * cols != x || y != x || w != cols || b != cols || mean != rows || rstd != rows)
            throw new ArgumentException($"LayerNormKernel: x {x}, weight {w}, bias {b}, y/dy {y}, mean {mean}, rstd {rstd} do not fit {rows}×{cols}.");
    }
}
