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
    private static void Move(int[] inShape, int[] dims, Span<float> xSpan, Span<float> ySpan, bool accumulateBack)
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
        for (int j = 0; j < total; j += run)
        {
            int src = 0;
            for (int d = 0; d < outer; d++) src += index[d] * strideOfOut[d];
            if (!accumulateBack) xSpan.Slice(src, run).CopyTo(ySpan.Slice(j, run));
            else if (run == 1) xSpan[src] += ySpan[j];
            else TensorPrimitives.Add(xSpan.Slice(src, run), ySpan.Slice(j, run), xSpan.Slice(src, run));
            for (int d = outer - 1; d >= 0; d--)
            {
                if (++index[d] < outShape[d]) break;
                index[d] = 0;
            }
        }
    }
}
