using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Kernels;

/// <summary>
/// Row-wise log-softmax, stable for large logits: <c>log softmax(x)ᵢ = xᵢ − m − log Σⱼ exp(xⱼ − m)</c>
/// with <c>m = maxⱼ xⱼ</c>. Subtracting the maximum keeps every exponent ≤ 0, so exp never overflows
/// even when raw 0..255 pixels drive the logits into the hundreds or thousands.
/// (TensorPrimitives.SoftMax does not subtract the maximum, so it cannot be used here.)
/// </summary>
public static class LogSoftmax
{
    /// <summary>Writes log-softmax of each row of the rows×cols matrix <paramref name="x"/> into <paramref name="y"/>
    /// (may alias x).</summary>
    public static void Rows(ReadOnlySpan<float> x, Span<float> y, int rows, int cols)
    {
        if ((long)rows * cols != x.Length || y.Length != x.Length)
            throw new ArgumentException($"LogSoftmax.Rows: x has {x.Length} elements, y {y.Length}, " +
                $"expected {rows}×{cols}.");
        if (cols == 0) return;
        for (int i = 0; i < rows; i++)
        {
            ReadOnlySpan<float> xr = x.Slice(i * cols, cols);
            Span<float> yr = y.Slice(i * cols, cols);
            float max = TensorPrimitives.Max(xr);
            // yr = exp(x − max) to sum, then yr = (x − max) − log Σ. No scratch buffer; subtracting the
            // max first keeps the result accurate relative to |y| rather than to |x| (x may be ~10³).
            TensorPrimitives.Subtract(xr, max, yr);
            TensorPrimitives.Exp(yr, yr);
            float logSum = MathF.Log(TensorPrimitives.Sum(yr));
            TensorPrimitives.Subtract(xr, max, yr);
            TensorPrimitives.Subtract(yr, logSum, yr);
        }
    }
}
