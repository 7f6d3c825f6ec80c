using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using System.Runtime.Intrinsics;

namespace LoRA.Managed.Kernels;

/// <summary>ReLU on spans: forward <c>y = max(x, 0)</c>, backward <c>dx += dy · [y &gt; 0]</c>.</summary>
public static unsafe class Relu
{
    /// <summary><c>y = max(x, 0)</c>, elementwise (TensorPrimitives.Max has this operation).</summary>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        if (y.Length < x.Length)
            throw new ArgumentException($"Relu.Forward: destination has {y.Length} elements, source {x.Length}.");
        TensorPrimitives.Max(x, 0f, y[..x.Length]);
    }

    /// <summary>
    /// Accumulates the gradient through ReLU: <c>dx += y &gt; 0 ? dy : 0</c>, where y is the forward
    /// output (y &gt; 0 exactly where x &gt; 0). TensorPrimitives has no masked select, so this is hand-written SIMD.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx) =>
        Backward(y, dy, dx, overwrite: false);

    /// <summary>With <paramref name="overwrite"/>, <c>dx = 0 + (y &gt; 0 ? dy : 0)</c>: the bits of adding into a
    /// zeroed dx (the + 0 turns a −0 into +0 as that add does) without a pass to zero dx first.</summary>
    internal static void Backward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, bool overwrite)
    {
        int n = y.Length;
        if (dy.Length != n || dx.Length != n)
            throw new ArgumentException($"Relu.Backward: lengths differ: y {n}, dy {dy.Length}, dx {dx.Length}.");
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var mask = Vector512.GreaterThan(Vector512.Create(y.Slice(i)), Vector512<float>.Zero);
                var add = Vector512.ConditionalSelect(mask, Vector512.Create(dy.Slice(i)), Vector512<float>.Zero);
                var old = overwrite ? Vector512<float>.Zero : Vector512.Create(dx.Slice(i));
                (old + add).CopyTo(dx.Slice(i));
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var mask = Vector256.GreaterThan(Vector256.Create(y.Slice(i)), Vector256<float>.Zero);
                var add = Vector256.ConditionalSelect(mask, Vector256.Create(dy.Slice(i)), Vector256<float>.Zero);
                var old = overwrite ? Vector256<float>.Zero : Vector256.Create(dx.Slice(i));
                (old + add).CopyTo(dx.Slice(i));
            }
        }
        for (; i < n; i++)
            if (overwrite) dx[i] = 0f + (y[i] > 0f ? dy[i] : 0f);
            else if (y[i] > 0f) dx[i] += dy[i];
    }

    /// <summary>
    /// The backward of a linear layer fused with its ReLU (<c>y = max(x·Wᵀ + b, 0)</c>): the masked gradient
    /// <c>dz = 0 + (y &gt; 0 ? dy : 0)</c> of a rows×cols matrix, and, when <paramref name="biasGrad"/> is given,
    /// <c>biasGrad[j] += Σᵢ dz[i, j]</c> with the rows added in order. The bits of
    /// <see cref="Backward(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, bool)"/> into a zero gradient then
    /// <see cref="RowOps.AccumulateColumnSums"/>, in one pass split over threads by blocks of 32 columns (dz may be
    /// dy itself: each element is read before it is written): the blocks
    /// the forward product split by columns left in each thread's cache.
    /// </summary>
    internal static void BackwardWithBiasGrad(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dz,
        int rows, int cols, Span<float> biasGrad)
    {
        if ((long)rows * cols != y.Length || dy.Length != y.Length || dz.Length != y.Length || rows < 0 || cols < 0)
            throw new ArgumentException($"Relu.BackwardWithBiasGrad: y {y.Length}, dy {dy.Length}, dz {dz.Length} " +
                $"elements for {rows}×{cols}.");
        if (!biasGrad.IsEmpty && biasGrad.Length != cols)
            throw new ArgumentException($"Relu.BackwardWithBiasGrad: bias gradient has {biasGrad.Length} elements, " +
                $"the matrix {cols} columns.");
        if (rows == 0 || cols == 0) return;
        int blocks = (cols + 15) / 16;
        fixed (float* py = y, pdy = dy, pdz = dz, ps = biasGrad)
            ParallelRange.For(new MaskSumsBody(py, pdy, pdz, biasGrad.IsEmpty ? null : ps, rows, cols), blocks, 2,
                Math.Max(1, MinElementsPerPart / (16 * rows)));
    }

    // Smaller than the elementwise kernels' 32 K: the data was written by the threads that split the products
    // around this pass, so a part that stays on one core saves moving its half across, not only the arithmetic.
    private const int MinElementsPerPart = 8 * 1024;

    // Items are 16-column blocks, the last may be partial; each column's sum adds the rows in order.
    private readonly struct MaskSumsBody(float* y, float* dy, float* dz, float* sums, int rows, int cols) : IRangeBody
    {
        public void Run(int start, int end)
        {
            int j = start * 16, stop = Math.Min(cols, end * 16);
            if (Vector512.IsHardwareAccelerated)
                for (; j + 16 <= stop; j += 16)
                {
                    Vector512<float> s = sums == null ? default : Vector512.Load(sums + j);
                    long at = j;
                    for (int i = 0; i < rows; i++, at += cols)
                    {
                        var mask = Vector512.GreaterThan(Vector512.Load(y + at), Vector512<float>.Zero);
                        var d = Vector512<float>.Zero + Vector512.ConditionalSelect(mask, Vector512.Load(dy + at),
                            Vector512<float>.Zero);
                        d.Store(dz + at);
                        s += d;
                    }
                    if (sums != null) s.Store(sums + j);
                }
            for (; j < stop; j++)
            {
                float s = sums == null ? 0f : sums[j];
                long at = j;
                for (int i = 0; i < rows; i++, at += cols)
                {
                    float d = 0f + (y[at] > 0f ? dy[at] : 0f);
                    dz[at] = d;
                    s += d;
                }
                if (sums != null) sums[j] = s;
            }
        }
    }
}
