using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Kernels;

/// <summary>
/// SiLU, <c>silu(x) = x·σ(x)</c> (Elfwing et al. 2018; Llama's <c>hidden_act: "silu"</c>), and its derivative
/// <c>σ(x)·(1 + x·(1 − σ(x)))</c>. Both run on <see cref="TensorPrimitives"/> in stack chunks, so they allocate
/// nothing.
/// </summary>
public static unsafe class SiluKernel
{
    private const int Chunk = 256;

    // Below this many elements a second thread costs more than it saves.
    private const int MinPerThread = 16 * 1024;

    /// <summary>Writes <c>silu(x)</c> into y (same length; y may alias x).</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        if (x.Length != y.Length)
            throw new ArgumentException($"SiluKernel.Forward: x has {x.Length} elements, y {y.Length}.");
        fixed (float* px = x, py = y)
            ParallelRange.For(new ForwardBody(px, py), x.Length, Chunk, MinPerThread);
    }

    private readonly struct ForwardBody(float* x, float* y) : IRangeBody
    {
        public void Run(int start, int end) =>
            ForwardSerial(new ReadOnlySpan<float>(x + start, end - start), new Span<float>(y + start, end - start));
    }

    private readonly struct BackwardBody(float* x, float* dy, float* dx) : IRangeBody
    {
        public void Run(int start, int end) => BackwardSerial(new ReadOnlySpan<float>(x + start, end - start),
            new ReadOnlySpan<float>(dy + start, end - start), new Span<float>(dx + start, end - start));
    }

    // Chunks of 256 from the range's start; ParallelRange splits on multiples of 256, so the bits do not depend on
    // the thread count.
    private static void ForwardSerial(ReadOnlySpan<float> x, Span<float> y)
    {
        Span<float> t = stackalloc float[Chunk];
        for (int start = 0; start < x.Length; start += Chunk)
        {
            int n = Math.Min(Chunk, x.Length - start);
            Span<float> ts = t.Slice(0, n);
            TensorPrimitives.Sigmoid(x.Slice(start, n), ts);
            TensorPrimitives.Multiply(ts, x.Slice(start, n), y.Slice(start, n));
        }
    }

    /// <summary>Accumulates <c>dx += dy·silu′(x)</c>.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        if (x.Length != dy.Length || x.Length != dx.Length)
            throw new ArgumentException($"SiluKernel.Backward: x {x.Length}, dy {dy.Length}, dx {dx.Length} elements.");
        fixed (float* px = x, pdy = dy, pdx = dx)
            ParallelRange.For(new BackwardBody(px, pdy, pdx), x.Length, Chunk, MinPerThread);
    }

    /// <summary>σ(x) into <paramref name="sigmoid"/> and <c>silu′(x) = σ·(1 + x·(1 − σ))</c> into
    /// <paramref name="derivative"/> (one chunk; <see cref="SwiGluKernel"/> shares it, so both derivatives have one
    /// set of bits).</summary>
    internal static void SigmoidAndDerivative(ReadOnlySpan<float> x, Span<float> sigmoid, Span<float> derivative)
    {
        TensorPrimitives.Sigmoid(x, sigmoid);
        TensorPrimitives.Subtract(1f, sigmoid, derivative);                 // 1 − σ
        TensorPrimitives.FusedMultiplyAdd(x, derivative, 1f, derivative);   // 1 + x(1 − σ)
        TensorPrimitives.Multiply(derivative, sigmoid, derivative);         // silu′(x)
    }

    private static void BackwardSerial(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        Span<float> buffer = stackalloc float[2 * Chunk];
        for (int start = 0; start < x.Length; start += Chunk)
        {
            int n = Math.Min(Chunk, x.Length - start);
            ReadOnlySpan<float> xs = x.Slice(start, n);
            Span<float> sg = buffer.Slice(0, n), d = buffer.Slice(Chunk, n);
            SigmoidAndDerivative(xs, sg, d);
            Span<float> dxs = dx.Slice(start, n);
            TensorPrimitives.FusedMultiplyAdd(dy.Slice(start, n), d, dxs, dxs);
        }
    }
}
