using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Kernels;

/// <summary>
/// GELU in its tanh approximation (Hendrycks &amp; Gimpel, "Gaussian Error Linear Units", 2016, eq. for
/// the fast approximation), as GPT-2 and nanoGPT use it and as <c>F.gelu(x, approximate='tanh')</c> computes:
/// <c>gelu(x) = ½x(1 + tanh(√(2/π)(x + 0.044715x³)))</c>. Its derivative, with <c>u = √(2/π)(x + 0.044715x³)</c>,
/// is <c>½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²)</c>.
/// Both passes run on <see cref="TensorPrimitives"/> in chunks of a stack buffer, so they allocate nothing.
/// </summary>
public static unsafe class GeluKernel
{
    /// <summary>√(2/π).</summary>
    public const float SqrtTwoOverPi = 0.7978845608028654f;

    /// <summary>The cubic coefficient of the approximation.</summary>
    public const float Cubic = 0.044715f;

    private const int Chunk = 256;

    // Below this many elements a second thread costs more than it saves (a few µs of hand-off).
    private const int MinPerThread = 16 * 1024;

    /// <summary>Writes <c>gelu(x)</c> into y (the same length; y may alias x).</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        if (x.Length != y.Length) throw new ArgumentException($"GeluKernel.Forward: x has {x.Length} elements, y {y.Length}.");
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

    // Chunks of 256 from the start of the range: ParallelRange splits at multiples of 256, so every element is
    // computed by the same sequence of vector calls whatever the thread count.
    private static void ForwardSerial(ReadOnlySpan<float> x, Span<float> y)
    {
        Span<float> t = stackalloc float[Chunk];
        for (int start = 0; start < x.Length; start += Chunk)
        {
            int n = Math.Min(Chunk, x.Length - start);
            ReadOnlySpan<float> xs = x.Slice(start, n);
            Span<float> ts = t.Slice(0, n), ys = y.Slice(start, n);
            TensorPrimitives.Multiply(xs, xs, ts);                       // x²
            TensorPrimitives.Multiply(ts, Cubic * SqrtTwoOverPi, ts);
            TensorPrimitives.Add(ts, SqrtTwoOverPi, ts);                 // k(1 + c·x²)
            TensorPrimitives.Multiply(ts, xs, ts);                       // u = k(x + c·x³)
            TensorPrimitives.Tanh(ts, ts);
            TensorPrimitives.Add(ts, 1f, ts);
            TensorPrimitives.Multiply(ts, xs, ts);
            TensorPrimitives.Multiply(ts, 0.5f, ys);                     // written last, so y may alias x
        }
    }

    /// <summary>Accumulates <c>dx += dy·gelu′(x)</c>.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        if (x.Length != dy.Length || x.Length != dx.Length)
            throw new ArgumentException($"GeluKernel.Backward: x {x.Length}, dy {dy.Length}, dx {dx.Length} elements.");
        fixed (float* px = x, pdy = dy, pdx = dx)
            ParallelRange.For(new BackwardBody(px, pdy, pdx), x.Length, Chunk, MinPerThread);
    }

    private static void BackwardSerial(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        Span<float> buffer = stackalloc float[3 * Chunk];
        for (int start = 0; start < x.Length; start += Chunk)
        {
            int n = Math.Min(Chunk, x.Length - start);
            ReadOnlySpan<float> xs = x.Slice(start, n);
            Span<float> sq = buffer.Slice(0, n), th = buffer.Slice(Chunk, n), d = buffer.Slice(2 * Chunk, n);
            TensorPrimitives.Multiply(xs, xs, sq);                       // x²
            TensorPrimitives.Multiply(sq, Cubic * SqrtTwoOverPi, th);
            TensorPrimitives.Add(th, SqrtTwoOverPi, th);
            TensorPrimitives.Multiply(th, xs, th);
            TensorPrimitives.Tanh(th, th);                               // tanh u
            TensorPrimitives.Multiply(sq, 3f * Cubic * SqrtTwoOverPi, d);
            TensorPrimitives.Add(d, SqrtTwoOverPi, d);                   // k(1 + 3c·x²)
            TensorPrimitives.Multiply(d, xs, d);
            TensorPrimitives.Multiply(d, 0.5f, d);                       // ½x·k(1 + 3c·x²)
            TensorPrimitives.Multiply(th, th, sq);
            TensorPrimitives.Subtract(1f, sq, sq);                       // 1 − tanh²u
            TensorPrimitives.Multiply(d, sq, d);
            TensorPrimitives.MultiplyAdd(th, 0.5f, d, d);
            TensorPrimitives.Add(d, 0.5f, d);                            // gelu′(x)
            Span<float> dxs = dx.Slice(start, n);
            TensorPrimitives.FusedMultiplyAdd(dy.Slice(start, n), d, dxs, dxs);
        }
    }
}
