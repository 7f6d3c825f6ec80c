using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Kernels;

/// <summary>
/// The gate of a Llama MLP, SwiGLU (Shazeer 2020, "GLU Variants Improve Transformer"): <c>y = silu(g) ⊙ u</c>, with
/// <c>silu(g) = g·σ(g)</c>; backward <c>∂u = ∂y ⊙ silu(g)</c> and <c>∂g = (∂y ⊙ u) ⊙ silu′(g)</c>, where
/// <c>silu′(g) = σ(g)·(1 + g·(1 − σ(g)))</c>. One pass instead of <see cref="SiluKernel"/> and an elementwise multiply:
/// silu(g) is neither written nor read back, and the two gradients are computed together. Each value is formed by the
/// same <see cref="TensorPrimitives"/> calls, in the same order, as <see cref="SiluKernel"/> followed by the multiply,
/// so the results are theirs. Split over threads in chunks of 256 (the bits do not depend on the thread count);
/// <see cref="LlamaKernelsReference.SwiGluForward"/> and <see cref="LlamaKernelsReference.SwiGluBackward"/> are the
/// twins.
/// </summary>
public static unsafe class SwiGluKernel
{
    private const int Chunk = 256;

    // Below this many elements a second thread costs more than it saves (as SiluKernel).
    private const int MinPerThread = 16 * 1024;

    /// <summary>Writes <c>silu(g) ⊙ u</c> into y (all one length; y may alias g or u).</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void Forward(ReadOnlySpan<float> g, ReadOnlySpan<float> u, Span<float> y)
    {
        if (g.Length != u.Length || g.Length != y.Length)
            throw new ArgumentException(
                $"SwiGluKernel.Forward: gate {g.Length}, up {u.Length}, y {y.Length} elements.");
        fixed (float* pg = g, pu = u, py = y)
            ParallelRange.For(new ForwardBody(pg, pu, py), g.Length, Chunk, MinPerThread);
    }

    /// <summary>
    /// The gradients of <see cref="Forward"/> for upstream <paramref name="dy"/>: into <paramref name="du"/> and
    /// <paramref name="dg"/>, each overwritten when its flag says so and accumulated (<c>+=</c>) otherwise; an empty
    /// span skips that gradient. <paramref name="du"/> is written before <paramref name="dg"/> within each chunk, so
    /// one buffer may be both (g and u the same tensor, the second accumulating).
    /// </summary>
    /// <exception cref="ArgumentException">A span that is not empty has another length.</exception>
    public static void Backward(ReadOnlySpan<float> g, ReadOnlySpan<float> u, ReadOnlySpan<float> dy,
        Span<float> dg, bool overwriteDg, Span<float> du, bool overwriteDu)
    {
        int n = g.Length;
        if (u.Length != n || dy.Length != n || (!dg.IsEmpty && dg.Length != n) || (!du.IsEmpty && du.Length != n))
            throw new ArgumentException($"SwiGluKernel.Backward: gate {n}, up {u.Length}, dy {dy.Length}, " +
                $"dgate {dg.Length}, dup {du.Length} elements.");
        fixed (float* pg = g, pu = u, pdy = dy, pdg = dg, pdu = du)
            ParallelRange.For(new BackwardBody(pg, pu, pdy, dg.IsEmpty ? null : pdg, overwriteDg,
                du.IsEmpty ? null : pdu, overwriteDu), n, Chunk, MinPerThread);
    }

    private readonly struct ForwardBody(float* g, float* u, float* y) : IRangeBody
    {
        public void Run(int start, int end)
        {
            Span<float> t = stackalloc float[Chunk];
            for (int c = start; c < end; c += Chunk)
            {
                int n = Math.Min(Chunk, end - c);
                var gs = new ReadOnlySpan<float>(g + c, n);
                Span<float> s = t[..n];
                TensorPrimitives.Sigmoid(gs, s);
                TensorPrimitives.Multiply(s, gs, s);                                      // silu(g), as SiluKernel
                TensorPrimitives.Multiply(s, new ReadOnlySpan<float>(u + c, n), new Span<float>(y + c, n));
            }
        }
    }

    private readonly struct BackwardBody(float* g, float* u, float* dy, float* dg, bool overwriteDg, float* du,
        bool overwriteDu) : IRangeBody
    {
        public void Run(int start, int end)
        {
            Span<float> buffer = stackalloc float[3 * Chunk];
            for (int c = start; c < end; c += Chunk)
            {
                int n = Math.Min(Chunk, end - c);
                var gs = new ReadOnlySpan<float>(g + c, n);
                var dys = new ReadOnlySpan<float>(dy + c, n);
                Span<float> sg = buffer[..n], d = buffer.Slice(Chunk, n), ds = buffer.Slice(2 * Chunk, n);
                SiluKernel.SigmoidAndDerivative(gs, sg, d);                               // σ(g), silu′(g)
                if (du != null)
                {
                    TensorPrimitives.Multiply(sg, gs, ds);                                // silu(g)
                    var dus = new Span<float>(du + c, n);
                    if (overwriteDu) TensorPrimitives.Multiply(dys, ds, dus);
                    else TensorPrimitives.FusedMultiplyAdd(dys, ds, dus, dus);
                }
                if (dg == null) continue;
                TensorPrimitives.Multiply(dys, new ReadOnlySpan<float>(u + c, n), ds);   // ∂silu = ∂y ⊙ u
                var dgs = new Span<float>(dg + c, n);
                if (overwriteDg) TensorPrimitives.Multiply(ds, d, dgs);
                else TensorPrimitives.FusedMultiplyAdd(ds, d, dgs, dgs);
            }
        }
    }
}
