namespace LoRA.Managed.Kernels;

/// <summary>
/// Plain scalar twins of the elementwise kernels (<see cref="Relu"/>, <see cref="RowOps"/>,
/// <see cref="LogSoftmax"/>, <see cref="CrossEntropyKernel"/>, <see cref="AdamUpdate"/>): one loop each,
/// written straight from the formula, for tests and benchmarks to hold the fast versions against.
/// </summary>
public static class ElementwiseReference
{
    /// <summary><c>y = max(x, 0)</c>.</summary>
    public static void ReluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = x[i] > 0f ? x[i] : 0f;
    }

    /// <summary><c>dx += y &gt; 0 ? dy : 0</c>.</summary>
    public static void ReluBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
    {
        for (int i = 0; i < y.Length; i++) if (y[i] > 0f) dx[i] += dy[i];
    }

    /// <summary><c>y[i, j] += bias[j]</c>.</summary>
    public static void AddBias(Span<float> y, ReadOnlySpan<float> bias, int rows, int cols)
    {
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) y[i * cols + j] += bias[j];
    }

    /// <summary><c>sums[j] += Σᵢ x[i, j]</c>.</summary>
    public static void AccumulateColumnSums(ReadOnlySpan<float> x, int rows, int cols, Span<float> sums)
    {
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) sums[j] += x[i * cols + j];
    }

    /// <summary>Log-softmax of each row, computed in double from the definition (with the max shift).</summary>
    public static void LogSoftmaxRows(ReadOnlySpan<float> x, Span<float> y, int rows, int cols)
    {
        for (int i = 0; i < rows; i++)
        {
            double max = double.NegativeInfinity;
            for (int j = 0; j < cols; j++) max = Math.Max(max, x[i * cols + j]);
            double sum = 0;
            for (int j = 0; j < cols; j++) sum += Math.Exp(x[i * cols + j] - max);
            double logSum = Math.Log(sum);
            for (int j = 0; j < cols; j++) y[i * cols + j] = (float)(x[i * cols + j] - max - logSum);
        }
    }

    /// <summary>Mean cross-entropy and its gradient <c>(softmax − onehot)/B</c>, in double.</summary>
    public static float CrossEntropy(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes,
        Span<float> dLogits)
    {
        int rows = labels.Length;
        LogSoftmaxRows(logits, dLogits, rows, classes);
        double total = 0;
        for (int i = 0; i < rows; i++)
        {
            total -= dLogits[i * classes + labels[i]];
            for (int j = 0; j < classes; j++)
            {
                double p = Math.Exp(dLogits[i * classes + j]);
                dLogits[i * classes + j] = (float)((p - (j == labels[i] ? 1 : 0)) / rows);
            }
        }
        return (float)(total / rows);
    }

    /// <summary>One Adam step per element, the same formula as <see cref="AdamUpdate.Step"/>.</summary>
    public static void AdamStep(Span<float> param, ReadOnlySpan<float> grad, Span<float> m, Span<float> v,
        float stepSize, float oneMinusBeta1, float beta2, float oneMinusBeta2, float bias2Sqrt, float eps, float l2,
        float decoupledDecay)
    {
        for (int i = 0; i < param.Length; i++)
        {
            float p0 = param[i];
            float g = grad[i] + l2 * p0;
            m[i] = m[i] + oneMinusBeta1 * (g - m[i]);
            v[i] = beta2 * v[i] + oneMinusBeta2 * g * g;
            param[i] = p0 * decoupledDecay - stepSize * (m[i] / (MathF.Sqrt(v[i]) / bias2Sqrt + eps));
        }
    }
}
