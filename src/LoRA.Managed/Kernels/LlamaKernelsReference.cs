namespace LoRA.Managed.Kernels;

/// <summary>
/// Plain scalar twins of <see cref="RmsNormKernel"/>, <see cref="SiluKernel"/>, <see cref="SwiGluKernel"/>,
/// <see cref="RopeKernel"/> and
/// <see cref="CachedAttentionKernel"/>: one loop each, in double, straight from the formulas, for tests to hold the
/// fast versions against.
/// </summary>
public static class LlamaKernelsReference
{
    /// <summary>RMSNorm forward, as <see cref="RmsNormKernel.Forward"/>.</summary>
    public static void RmsNormForward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y,
        Span<float> rstd,
        int rows, int cols, float eps)
    {
        for (int r = 0; r < rows; r++)
        {
            double ms = 0;
            for (int c = 0; c < cols; c++) ms += (double)x[r * cols + c] * x[r * cols + c];
            double s = 1 / Math.Sqrt(ms / cols + eps);
            rstd[r] = (float)s;
            for (int c = 0; c < cols; c++) y[r * cols + c] = (float)(weight[c] * (x[r * cols + c] * s));
        }
    }

    /// <summary>RMSNorm backward, as <see cref="RmsNormKernel.Backward"/> (accumulating into dx and dw).</summary>
    public static void RmsNormBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> rstd,
        ReadOnlySpan<float> dy,
        Span<float> dx, Span<float> dw, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            double s = rstd[r], dot = 0;
            for (int c = 0; c < cols; c++) dot += (double)dy[r * cols + c] * weight[c] * x[r * cols + c] * s;
            double mean = dot / cols;
            for (int c = 0; c < cols; c++)
            {
                double xhat = x[r * cols + c] * s, g = (double)dy[r * cols + c] * weight[c];
                dx[r * cols + c] += (float)(s * (g - xhat * mean));
                dw[c] += (float)(dy[r * cols + c] * xhat);
            }
        }
    }

    /// <summary>SiLU forward, as <see cref="SiluKernel.Forward"/>.</summary>
    public static void SiluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = (float)(x[i] / (1 + Math.Exp(-x[i])));
    }

    /// <summary>SiLU backward, as <see cref="SiluKernel.Backward"/> (accumulating).</summary>
    public static void SiluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double s = 1 / (1 + Math.Exp(-x[i]));
            dx[i] += (float)(dy[i] * s * (1 + x[i] * (1 - s)));
        }
    }

    /// <summary>SwiGLU forward, <c>silu(g)·u</c>, as <see cref="SwiGluKernel.Forward"/>.</summary>
    public static void SwiGluForward(ReadOnlySpan<float> g, ReadOnlySpan<float> u, Span<float> y)
    {
        for (int i = 0; i < g.Length; i++) y[i] = (float)(g[i] / (1 + Math.Exp(-g[i])) * u[i]);
    }

    /// <summary>SwiGLU backward, as <see cref="SwiGluKernel.Backward"/> accumulating into both gradients.</summary>
    public static void SwiGluBackward(ReadOnlySpan<float> g, ReadOnlySpan<float> u, ReadOnlySpan<float> dy,
        Span<float> dg, Span<float> du)
    {
        for (int i = 0; i < g.Length; i++)
        {
            double s = 1 / (1 + Math.Exp(-g[i]));
            du[i] += (float)(dy[i] * g[i] * s);
            dg[i] += (float)(dy[i] * u[i] * s * (1 + g[i] * (1 - s)));
        }
    }

    /// <summary>
    /// Rotary embedding of x (B, T, H, D) at positions start + t, as <see cref="RopeKernel.Forward"/>, from the
    /// frequencies ω (D/2 values) directly: θ = p·ω in double.
    /// </summary>
    public static void RopeForward(ReadOnlySpan<float> x, Span<float> y, int batch, int time, int heads, int headDim,
        int start, ReadOnlySpan<double> invFreq)
    {
        int half = headDim / 2;
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < time; t++)
                for (int h = 0; h < heads; h++)
                {
                    int o = ((b * time + t) * heads + h) * headDim;
                    for (int i = 0; i < half; i++)
                    {
                        double angle = (start + t) * invFreq[i], c = Math.Cos(angle), s = Math.Sin(angle);
                        double x1 = x[o + i], x2 = x[o + half + i];
                        y[o + i] = (float)(x1 * c - x2 * s);
                        y[o + half + i] = (float)(x2 * c + x1 * s);
                    }
                }
    }

    /// <summary>
    /// Cached causal attention, as <see cref="CachedAttentionKernel.Forward"/>, written the way
    /// <c>repeat_kv</c> + <c>softmax(QKᵀ·s + mask)·V</c> reads.
    /// </summary>
    public static void CachedAttention(ReadOnlySpan<float> q, ReadOnlySpan<float> keys, ReadOnlySpan<float> values,
        Span<float> output,
        int n, int heads, int kvHeads, int headDim, int start, float scale)
    {
        int group = heads / kvHeads, d = headDim;
        var p = new double[start + n];
        for (int i = 0; i < n; i++)
            for (int h = 0; h < heads; h++)
            {
                int g = h / group, seen = start + i + 1;
                double max = double.NegativeInfinity, sum = 0;
                for (int j = 0; j < seen; j++)
                {
                    double dot = 0;
                    for (int c = 0; c < d; c++)
                        dot += (double)q[(i * heads + h) * d + c] * keys[(j * kvHeads + g) * d + c];
                    p[j] = dot * scale;
                    max = Math.Max(max, p[j]);
                }
                for (int j = 0; j < seen; j++) { p[j] = Math.Exp(p[j] - max); sum += p[j]; }
                for (int c = 0; c < d; c++)
                {
                    double o = 0;
                    for (int j = 0; j < seen; j++) o += p[j] / sum * values[(j * kvHeads + g) * d + c];
                    output[(i * heads + h) * d + c] = (float)o;
                }
            }
    }
}
