namespace LoRA.Managed.Kernels;

/// <summary>
/// Plain scalar twins of <see cref="LayerNormKernel"/>, <see cref="GeluKernel"/> and
/// <see cref="CausalSoftmaxKernel"/>: one loop each, in double, written straight from the formulas,
/// for tests and benchmarks to hold the fast versions against.
/// </summary>
public static class TransformerKernelsReference
{
    /// <summary>LayerNorm forward, as <see cref="LayerNormKernel.Forward"/>.</summary>
    public static void LayerNormForward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias,
        Span<float> y, Span<float> mean, Span<float> rstd, int rows, int cols, float eps = 1e-5f)
    {
        for (int r = 0; r < rows; r++)
        {
            double m = 0, v = 0;
            for (int c = 0; c < cols; c++) m += x[r * cols + c];
            m /= cols;
            for (int c = 0; c < cols; c++) { double d = x[r * cols + c] - m; v += d * d; }
            double s = 1 / Math.Sqrt(v / cols + eps);
            for (int c = 0; c < cols; c++) y[r * cols + c] = (float)((x[r * cols + c] - m) * s * weight[c] + bias[c]);
            mean[r] = (float)m;
            rstd[r] = (float)s;
        }
    }

    /// <summary>LayerNorm backward, as <see cref="LayerNormKernel.Backward"/> (accumulating; all three
    /// gradients).</summary>
    public static void LayerNormBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> mean,
        ReadOnlySpan<float> rstd,
        ReadOnlySpan<float> dy, Span<float> dx, Span<float> dw, Span<float> db, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            double meanG = 0, meanGx = 0;
            for (int c = 0; c < cols; c++)
            {
                double xhat = (x[r * cols + c] - mean[r]) * (double)rstd[r], g = dy[r * cols + c] * (double)weight[c];
                meanG += g; meanGx += g * xhat;
            }
            meanG /= cols; meanGx /= cols;
            for (int c = 0; c < cols; c++)
            {
                double xhat = (x[r * cols + c] - mean[r]) * (double)rstd[r], g = dy[r * cols + c] * (double)weight[c];
                dx[r * cols + c] += (float)(rstd[r] * (g - meanG - xhat * meanGx));
                dw[c] += (float)(dy[r * cols + c] * xhat);
                db[c] += dy[r * cols + c];
            }
        }
    }

    /// <summary>GELU (tanh approximation) forward, as <see cref="GeluKernel.Forward"/>.</summary>
    public static void GeluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        const double k = 0.7978845608028654, c = 0.044715;
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            y[i] = (float)(0.5 * v * (1 + Math.Tanh(k * (v + c * v * v * v))));
        }
    }

    /// <summary>GELU backward, <c>dx += dy·gelu′(x)</c>, as <see cref="GeluKernel.Backward"/>.</summary>
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        const double k = 0.7978845608028654, c = 0.044715;
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i], th = Math.Tanh(k * (v + c * v * v * v));
            double d = 0.5 * (1 + th) + 0.5 * v * (1 - th * th) * k * (1 + 3 * c * v * v);
            dx[i] += (float)(dy[i] * d);
        }
    }

    /// <summary>Causal softmax forward, as <see cref="CausalSoftmaxKernel.Forward"/>.</summary>
    public static void CausalSoftmaxForward(ReadOnlySpan<float> x, Span<float> y, int matrices, int t, float scale = 1f)
    {
        for (int mtx = 0; mtx < matrices; mtx++)
            for (int i = 0; i < t; i++)
            {
                int o = (mtx * t + i) * t;
                double max = double.NegativeInfinity, sum = 0;
                for (int j = 0; j <= i; j++) max = Math.Max(max, x[o + j]);
                for (int j = 0; j <= i; j++) sum += Math.Exp(scale * (x[o + j] - max));
                for (int j = 0; j < t; j++) y[o + j] = j <= i ? (float)(Math.Exp(scale * (x[o + j] - max)) / sum) : 0f;
            }
    }

    /// <summary>Causal softmax backward, as <see cref="CausalSoftmaxKernel.Backward"/>.</summary>
    public static void CausalSoftmaxBackward(ReadOnlySpan<float> p, ReadOnlySpan<float> dp, Span<float> dx,
        int matrices, int t, float scale = 1f)
    {
        for (int mtx = 0; mtx < matrices; mtx++)
            for (int i = 0; i < t; i++)
            {
                int o = (mtx * t + i) * t;
                double dot = 0;
                for (int j = 0; j <= i; j++) dot += (double)p[o + j] * dp[o + j];
                for (int j = 0; j <= i; j++) dx[o + j] += (float)(scale * p[o + j] * (dp[o + j] - dot));
            }
    }
}
