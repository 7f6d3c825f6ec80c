using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using System.Runtime.Intrinsics;

namespace LoRA.Managed.Kernels;

/// <summary>ReLU on spans: forward <c>y = max(x, 0)</c>, backward <c>dx += dy · [y &gt; 0]</c>.</summary>
public static class Relu
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
}
