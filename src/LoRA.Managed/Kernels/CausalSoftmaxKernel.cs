namespace LoRA.Managed.Kernels;

/// <summary>
/// The masked softmax of causal self-attention ("Attention Is All You Need", Vaswani et al. 2017, §3.2.1
/// and §3.2.3): over <c>matrices</c> score matrices of T×T, row i of each keeps columns 0..i,
/// <c>pᵢⱼ = exp(s·(xᵢⱼ − mᵢ)) / Σ_{k≤i} exp(s·(xᵢₖ − mᵢ))</c> for j ≤ i with <c>mᵢ = max_{k≤i} xᵢₖ</c> (the
/// shift keeps every exponent ≤ 0), and <c>pᵢⱼ = 0</c> for j &gt; i, exactly what
/// <c>softmax(masked_fill(s·x, mask, −inf))</c> gives. The scale s is <c>1/√d_k</c> in attention.
/// Masked entries of x are never read. <see cref="TransformerKernelsReference"/> holds the scalar twins.
/// </summary>
/// <remarks>
/// Each row is one call of <see cref="SoftmaxRow"/> (rows of the forward two at a time), which
/// <see cref="CachedAttentionKernel"/> also uses, so a KV-cache decoding step's probabilities have the bits of the
/// training path's for the same scores. Written as five <see cref="System.Numerics.Tensors.TensorPrimitives"/> calls
/// per row, the forward cost about 0.9 ns per element of 128 matrices of 64×64 (half of them masked); fused, 3.3×
/// faster in cache, the backward 3.3× (<c>FusedRowKernelTests</c> hold the bit-for-bit properties).
/// </remarks>
public static unsafe class CausalSoftmaxKernel
{
    // Matrices per thread at least this many elements' worth: below, a second thread costs more than it saves.
    private const int MinElementsPerThread = 16 * 1024;

    /// <summary>Writes the masked, scaled softmax of x (matrices, T, T) into y (may alias x).</summary>
    /// <exception cref="ArgumentException">The lengths do not match matrices × T × T.</exception>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, int matrices, int t, float scale = 1f)
    {
        Check(x.Length, y.Length, matrices, t);
        fixed (float* px = x, py = y)
            ParallelRange.For(new ForwardBody(px, py, t, scale), matrices, 1, MinMatrices(t));
    }

    // Each matrix is computed alone, so splitting the matrices over threads changes no bit.
    private static int MinMatrices(int t) => Math.Max(1, MinElementsPerThread / Math.Max(1, t * t));

    private readonly struct ForwardBody(float* x, float* y, int t, float scale) : IRangeBody
    {
        public void Run(int start, int end)
        {
            long offset = (long)start * t * t, length = (long)(end - start) * t * t;
            ForwardSerial(new ReadOnlySpan<float>(x + offset, (int)length), new Span<float>(y + offset, (int)length),
                end - start, t, scale);
        }
    }

    private readonly struct BackwardBody(float* p, float* dp, float* dx, int t, float scale, bool overwrite)
        : IRangeBody
    {
        public void Run(int start, int end)
        {
            long offset = (long)start * t * t;
            int length = (end - start) * t * t;
            BackwardSerial(new ReadOnlySpan<float>(p + offset, length), new ReadOnlySpan<float>(dp + offset, length),
                new Span<float>(dx + offset, length), end - start, t, scale, overwrite);
        }
    }

    // One fused pass per row (SoftmaxRow), the masked columns j > i written as zeros; rows go in pairs, whose
    // independent work interleaves (each row's bits are those of the row alone).
    private static void ForwardSerial(ReadOnlySpan<float> x, Span<float> y, int matrices, int t, float scale)
    {
        fixed (float* px = x, py = y)
            for (int mtx = 0; mtx < matrices; mtx++)
            {
                long o = (long)mtx * t * t;
                int i = 0;
                for (; i + 1 < t; i += 2)
                    SoftmaxRow.ForwardPair(px + o + (long)i * t, py + o + (long)i * t, i + 1,
                        px + o + (long)(i + 1) * t, py + o + (long)(i + 1) * t, i + 2, t, scale);
                if (i < t) SoftmaxRow.Forward(px + o + (long)i * t, py + o + (long)i * t, i + 1, t, scale);
            }
    }

    /// <summary>
    /// Accumulates <c>∂xᵢⱼ += s·pᵢⱼ(∂pᵢⱼ − Σₖ pᵢₖ∂pᵢₖ)</c> for j ≤ i (the softmax Jacobian-vector product);
    /// masked entries get no gradient. p is the forward's output. With <paramref name="overwrite"/> ∂x is written
    /// instead (masked entries set to zero): a gradient that is still zero needs no clearing and no reading back.
    /// </summary>
    /// <exception cref="ArgumentException">The lengths do not match matrices × T × T.</exception>
    public static void Backward(ReadOnlySpan<float> p, ReadOnlySpan<float> dp, Span<float> dx, int matrices, int t,
        float scale = 1f,
        bool overwrite = false)
    {
        Check(p.Length, dp.Length, matrices, t);
        Check(p.Length, dx.Length, matrices, t);
        fixed (float* pp = p, pdp = dp, pdx = dx)
            ParallelRange.For(new BackwardBody(pp, pdp, pdx, t, scale, overwrite), matrices, 1, MinMatrices(t));
    }

    private static void BackwardSerial(ReadOnlySpan<float> p, ReadOnlySpan<float> dp, Span<float> dx, int matrices,
        int t, float scale,
        bool overwrite)
    {
        fixed (float* pp = p, pdp = dp, pdx = dx)
            for (long row = 0, rows = (long)matrices * t; row < rows; row++)
            {
                int n = (int)(row % t) + 1;
                long o = row * t;
                SoftmaxRow.Backward(pp + o, pdp + o, pdx + o, n, t, scale, overwrite);
            }
    }

    private static void Check(int x, int y, int matrices, int t)
    {
        if (matrices < 0 || t < 0 || (long)matrices * t * t != x || y != x)
            throw new ArgumentException($"CausalSoftmaxKernel: spans of {x} and {y} elements do not fit " +
                $"{matrices}×{t}×{t}.");
    }
}
