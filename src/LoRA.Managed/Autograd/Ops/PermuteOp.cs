using System.Runtime.Intrinsics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// Reorders dimensions (<c>x.permute(dims).contiguous()</c>): output dimension d is input dimension
/// <c>dims[d]</c>. Attention splits heads with <c>(B, T, nh, hs) → permute(0, 2, 1, 3) → (B, nh, T, hs)</c> and
/// merges them back with the same permutation. The result is a contiguous copy; backward scatters the
/// gradient back through the inverse permutation. When the last dimension stays last, whole rows are
/// copied (the head split's case); otherwise elements are moved one by one.
/// </summary>
internal sealed class PermuteOp : Op
{
    private Tensor _x = null!;
    // A copy of the permutation (the caller may reuse its array), kept on the reused record.
    private int[] _dims = [];

    public override string Name => "permute";

    public static Tensor Apply(Tensor x, int[] dims)
    {
        ArgumentNullException.ThrowIfNull(dims);
        int rank = x.Rank;
        bool valid = dims.Length == rank;
        Span<bool> seen = stackalloc bool[rank];
        foreach (int d in dims)
        {
            if (!valid || (uint)d >= (uint)rank || seen[d]) { valid = false; break; }
            seen[d] = true;
        }
        if (!valid)
            throw new ArgumentException($"permute: [{string.Join(", ", dims)}] is not a permutation of the {rank} dimensions of {Shapes.Format(x.Shape)}.");
        Span<int> shape = stackalloc int[rank];
        for (int d = 0; d < rank; d++) shape[d] = x.Shape[dims[d]];
        Tensor y = Tape.NewTensor(shape);
        Move(x.Shape, dims, x.Data, y.Data, accumulateBack: false); // writes every element of y
        if (Tape.ShouldRecord(x))
        {
            var op = Tape.Record<PermuteOp>(y);
            op._x = x;
            if (op._dims.Length != rank) op._dims = new int[rank];
            dims.CopyTo(op._dims, 0);
        }
        return y;
    }

    public override void Backward()
    {
        if (_x.RequiresGrad) Move(_x.Shape, _dims, _x.EnsureGrad(), Output.Grad, accumulateBack: true);
    }

    /// <summary>
    /// Walks the output in row-major order. Forward: <c>y[j] = x[src(j)]</c>. Backward
    /// (<paramref name="accumulateBack"/>): <c>x[src(j)] += y[j]</c>, where <c>xSpan</c> is then the input gradient and
    /// <c>ySpan</c> the output's.
    /// </summary>
    private static unsafe void Move(int[] inShape, int[] dims, Span<float> xSpan, Span<float> ySpan, bool accumulateBack)
    {
        int rank = inShape.Length;
        Span<int> inStride = stackalloc int[rank], outShape = stackalloc int[rank], strideOfOut = stackalloc int[rank], index = stackalloc int[rank];
        inStride[rank - 1] = 1;
        for (int d = rank - 2; d >= 0; d--) inStride[d] = inStride[d + 1] * inShape[d + 1];
        for (int d = 0; d < rank; d++) { outShape[d] = inShape[dims[d]]; strideOfOut[d] = inStride[dims[d]]; }
        int total = ySpan.Length;
        if (total == 0) return;
        // Copy runs of `run` contiguous elements when the last dimension is unchanged.
        bool rows = dims[rank - 1] == rank - 1;
        int run = rows ? outShape[rank - 1] : 1, outer = rows ? rank - 1 : rank;
        index.Clear();
        // The source offset follows the output index incrementally, and a head's row of 16 floats (attention's usual
        // head size) moves as one 512-bit vector: through Span.CopyTo per 16-float row, the head split and merge took
        // a tenth of lm-demo's step.
        bool oneVector = run == 16 && Vector512.IsHardwareAccelerated;
        int src = 0;
        fixed (float* px = xSpan, py = ySpan)
        {
            for (int j = 0; j < total; j += run)
            {
                float* xs = px + src, ys = py + j;
                if (oneVector)
                {
                    if (!accumulateBack) Vector512.Load(xs).Store(ys);
                    else (Vector512.Load(xs) + Vector512.Load(ys)).Store(xs);
                }
                else if (!accumulateBack) new Span<float>(xs, run).CopyTo(new Span<float>(ys, run));
                else if (run == 1) *xs += *ys;
                else TensorPrimitives.Add(new ReadOnlySpan<float>(xs, run), new ReadOnlySpan<float>(ys, run), new Span<float>(xs, run));
                for (int d = outer - 1; d >= 0; d--)
                {
                    src += strideOfOut[d];
                    if (++index[d] < outShape[d]) break;
                    src -= outShape[d] * strideOfOut[d];
                    index[d] = 0;
                }
            }
        }
    }
}
