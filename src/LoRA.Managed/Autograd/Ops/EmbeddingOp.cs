using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// Embedding lookup (<c>F.embedding</c>): output row n is row <c>ids[n]</c> of the weight (V, C), so the
/// output has the ids' shape with C appended. Backward scatter-adds: <c>∂W[ids[n]] += ∂y[n]</c>
/// (a repeated id accumulates every occurrence).
/// </summary>
internal sealed class EmbeddingOp : Op
{
    private Tensor _weight = null!;
    // A copy of the ids (the caller's span may be refilled before backward), kept on the reused record.
    private int[] _ids = [];

    public override string Name => "embedding";

    public static Tensor Apply(Tensor weight, ReadOnlySpan<int> ids, int[] idsShape)
    {
        Shapes.RequireMatrix(weight, "embedding", "weight");
        int dim = weight.Shape[1];
        Tensor y = NewOutput(weight.Shape[0], dim, ids, idsShape, null);
        ReadOnlySpan<float> w = weight.Data;
        Span<float> yd = y.Data;
        for (int n = 0; n < ids.Length; n++) w.Slice(ids[n] * dim, dim).CopyTo(yd.Slice(n * dim, dim));
        if (Tape.ShouldRecord(weight))
        {
            var op = Tape.Record<EmbeddingOp>(y);
            op._weight = weight;
            if (op._ids.Length != ids.Length) op._ids = new int[ids.Length];
            ids.CopyTo(op._ids);
        }
        return y;
    }

    /// <summary>The lookup from a frozen quantised table: each picked row expanded straight into the output (no
    /// record, as the table takes no gradient and the ids are not differentiable).</summary>
    public static Tensor ApplyQuantized(QuantizedMatrix weight, ReadOnlySpan<int> ids, int[] idsShape)
    {
        ArgumentNullException.ThrowIfNull(weight);
        int dim = weight.Columns;
        Tensor y = NewOutput(weight.Rows, dim, ids, idsShape, weight);
        Span<float> yd = y.Data;
        for (int n = 0; n < ids.Length; n++) weight.ExpandRange((long)ids[n] * dim, yd.Slice(n * dim, dim));
        return y;
    }

    // The ids checked against the table (vocab × dim, `quantised` or float); returns the output idsShape + [dim].
    private static Tensor NewOutput(int vocab, int dim, ReadOnlySpan<int> ids, int[] idsShape, QuantizedMatrix? quantised)
    {
        int count = Shapes.CheckedCount(idsShape, "embedding");
        if (count != ids.Length)
            throw new ArgumentException($"embedding: {ids.Length} ids do not fill the shape {Shapes.Format(idsShape)}.");
        if (idsShape.Length > 3)
            throw new ArgumentException($"embedding: ids of rank {idsShape.Length} would give an output of rank {idsShape.Length + 1}; at most 3 is supported.");
        for (int n = 0; n < ids.Length; n++)
            if ((uint)ids[n] >= (uint)vocab)
                throw new ArgumentOutOfRangeException(nameof(ids), ids[n], $"embedding: id {ids[n]} at position {n} is outside the vocabulary 0..{vocab - 1} of weight [{vocab}, {dim}]{(quantised is null ? "" : $" ({quantised.DType})")}.");
        Span<int> shape = stackalloc int[idsShape.Length + 1];
        idsShape.CopyTo(shape);
        shape[^1] = dim;
        return Tape.NewTensor(shape);
    }

    public override void Backward()
    {
        if (!_weight.RequiresGrad) return;
        int dim = _weight.Shape[1];
        Span<float> dw = _weight.EnsureGrad();
        ReadOnlySpan<float> dy = Output.Grad;
        for (int n = 0; n < _ids.Length; n++)
        {
            Span<float> row = dw.Slice(_ids[n] * dim, dim);
            TensorPrimitives.Add(row, dy.Slice(n * dim, dim), row);
        }
    }
}
