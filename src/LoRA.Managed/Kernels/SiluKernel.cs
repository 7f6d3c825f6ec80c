using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Kernels;

/// <summary>
/// SiLU, <c>silu(x) = x·σ(x)</c> (Elfwing et al. 2018; Llama's <c>hidden_act: "silu"</c>), and its derivative
/// <c>σ(x)·(1 + x·(1 − σ(x)))</c>. Both run on <see cref="TensorPrimitives"/> in stack chunks, so they allocate
/// nothing.
/// </summary>
public static class SiluKernel
{
    private const int Chunk = 256;

    /// <summary>Writes <c>silu(x)</c> into y (same length; y may alias x).</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        if (x.Length != y.Length) throw new ArgumentException($"SiluKernel.Forward: x has {x.Length} elements, y {y.Length}.");
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
        Span<float> buffer = stackalloc float[2 * Chunk];
        for (int start = 0; start < x.Length; start += Chunk)
        {
            int n = Math.Min(Chunk, x.Length - start);
            ReadOnlySpan<float> xs = x.Slice(start, n);
            Span<float> sg = buffer.Slice(0, n), d = buffer.Slice(Chunk, n);
            TensorPrimitives.Sigmoid(xs, sg);
            TensorPrimitives.Subtract(1f, sg, d);               // 1 − σ
            TensorPrimitives.FusedMultiplyAdd(xs, d, 1f, d);     // 1 + x(1 − σ)
            TensorPrimitives.Multiply(d, sg, d);                 // silu′(x)
            Span<float> dxs = dx.Slice(start, n);
            TensorPrimitives.FusedMultiplyAdd(dy.Slice(start, n), d, dxs, dxs);
        }
    }
}
