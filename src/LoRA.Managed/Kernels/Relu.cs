using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using System.Runtime.Intrinsics;

namespace LoRA.Managed.Kernels;

/// <summary>ReLU on spans: forward <c>y = max(x, 0)</c>, backward <c>dx += dy · [y &gt; 0]</c>.</summary>
public static unsafe class Relu
{
    /// <summary>
    /// <see cref="Forward(ReadOnlySpan{float}, Span{float})"/> on a matrix of <paramref name="cols"/> columns,
    /// split over threads by the column blocks the GEMM that wrote <paramref name="x"/> used
    /// (<see cref="ParallelRange.ForColumns"/>) when its rows are few, serial otherwise. Elementwise: any split gives
    /// the same bits.
    /// </summary>
    internal static void Forward(ReadOnlySpan<float> x, Span<float> y, int cols)
    {
        if (y.Length < x.Length)
            throw new ArgumentException($"Relu.Forward: destination has {y.Length} elements, source {x.Length}.");
        int rows = cols > 0 ? x.Length / cols : 0;
        if (cols <= 0 || (long)rows * cols != x.Length || !ParallelRange.SplitsByColumns(rows, cols))
        {
            Forward(x, y);
            return;
        }
        fixed (float* px = x, py = y)
            ParallelRange.ForColumns(new ColumnsBody(px, px, py, rows, cols, backward: false, overwrite: true), cols);
    }

    /// <summary><see cref="Backward(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float})"/> split like
    /// <see cref="Forward(ReadOnlySpan{float}, Span{float}, int)"/>; with <paramref name="overwrite"/> dx is written
    /// as if it had been zeroed first.</summary>
    internal static void Backward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int cols,
        bool overwrite)
    {
        int n = y.Length;
        if (dy.Length != n || dx.Length != n)
            throw new ArgumentException($"Relu.Backward: lengths differ: y {n}, dy {dy.Length}, dx {dx.Length}.");
        int rows = cols > 0 ? n / cols : 0;
        if (cols <= 0 || (long)rows * cols != n || !ParallelRange.SplitsByColumns(rows, cols))
        {
            Backward(y, dy, dx, overwrite);
            return;
        }
        fixed (float* py = y, pdy = dy, pdx = dx)
            ParallelRange.ForColumns(new ColumnsBody(py, pdy, pdx, rows, cols, backward: true, overwrite), cols);
    }

    // Columns [start, end) of every row. Forward: out = max(a, 0) (b unused). Backward: out += a > 0 ? b : 0, or
    // with overwrite out = 0 + (a > 0 ? b : 0).
    private readonly struct ColumnsBody(float* a, float* b, float* output, int rows, int cols, bool backward,
        bool overwrite) : IRangeBody
    {
        public void Run(int start, int end)
        {
            int len = end - start;
            for (long i = 0, at = start; i < rows; i++, at += cols)
            {
                if (backward)
                    Backward(new ReadOnlySpan<float>(a + at, len), new ReadOnlySpan<float>(b + at, len),
                        new Span<float>(output + at, len), overwrite);
                else TensorPrimitives.Max(new ReadOnlySpan<float>(a + at, len), 0f, new Span<float>(output + at, len));
            }
        }
    }

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
    /// zeroed dx (the + 0 turns a −0 into +0 as that add does), without zeroing dx first.</summary>
    private static void Backward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, bool overwrite)
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
            dx[i] = (overwrite ? 0f : dx[i]) + (y[i] > 0f ? dy[i] : 0f);
    }
}
