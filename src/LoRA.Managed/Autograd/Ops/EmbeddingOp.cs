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
        int vocab = weight.Shape[0], dim = weight.Shape[1];
        CheckIds("embedding", ids, idsShape, vocab, weight.Shape, "weight");
        Tensor y = NewOutput(idsShape, dim);
        ReadOnlySpan<float> w = weight.Data;
        Span<float> yd = y.Data;
        for (int n = 0; n < ids.Length; n++) w.Slice(ids[n] * dim, dim).CopyTo(yd.Slice(n * dim, dim));
        if (Tape.ShouldRecord(weight))
        {
            var op = Tape.Record<EmbeddingOp>(y);
            op._weight = weight;
            KeepIds(ref op._ids, ids);
        }
        return y;
    }

    /// <summary>The lookup from a frozen quantised table: each picked row expanded straight into the output (no
    /// record, as the table takes no gradient and the ids are not differentiable).</summary>
    public static Tensor ApplyQuantized(QuantizedMatrix weight, ReadOnlySpan<int> ids, int[] idsShape)
    {
        ArgumentNullException.ThrowIfNull(weight);
        int dim = weight.Columns;
        CheckIds("embedding", ids, idsShape, weight.Rows, stackalloc int[] { weight.Rows, dim }, "weight",
            weight.DType);
        Tensor y = NewOutput(idsShape, dim);
        Span<float> yd = y.Data;
        for (int n = 0; n < ids.Length; n++) weight.ExpandRange((long)ids[n] * dim, yd.Slice(n * dim, dim));
        return y;
    }

    /// <summary>A tape tensor of the ids' shape with <paramref name="width"/> appended.</summary>
    internal static Tensor NewOutput(int[] idsShape, int width)
    {
        Span<int> shape = stackalloc int[idsShape.Length + 1];
        idsShape.CopyTo(shape);
        shape[^1] = width;
        return Tape.NewTensor(shape);
    }

    /// <summary>Copies <paramref name="ids"/> into a reused record's array (the caller's span may be refilled before
    /// backward), allocating only when the count changes.</summary>
    internal static void KeepIds(ref int[] kept, ReadOnlySpan<int> ids)
    {
        if (kept.Length != ids.Length) kept = new int[ids.Length];
        ids.CopyTo(kept);
    }

    /// <summary>
    /// Checks that <paramref name="ids"/> fill <paramref name="idsShape"/> (rank at most 3) and index a vocabulary of
    /// <paramref name="vocab"/> entries; <paramref name="op"/> and <paramref name="what"/> (the role of the table of
    /// shape <paramref name="table"/>, stored <paramref name="quantised"/> if not float32) name them in the message.
    /// <see cref="EmbeddingColumnsOp"/> checks through here too.
    /// </summary>
    /// <exception cref="ArgumentException">The ids do not fill the shape, or it has rank above 3.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary (its position named).</exception>
    internal static void CheckIds(string op, ReadOnlySpan<int> ids, int[] idsShape, int vocab,
        ReadOnlySpan<int> table, string what, BaseDType? quantised = null)
    {
        int count = Shapes.CheckedCount(idsShape, op);
        if (count != ids.Length)
            throw new ArgumentException($"{op}: {ids.Length} ids do not fill the shape {Shapes.Format(idsShape)}.");
        if (idsShape.Length > 3)
            throw new ArgumentException($"{op}: ids of rank {idsShape.Length} would give an output of rank " +
                $"{idsShape.Length + 1}; at most 3 is supported.");
        for (int n = 0; n < ids.Length; n++)
            if ((uint)ids[n] >= (uint)vocab)
                throw new ArgumentOutOfRangeException(nameof(ids), ids[n], $"{op}: id {ids[n]} at position {n} is " +
                    $"outside the vocabulary 0..{vocab - 1} of {what} {Shapes.Format(table)}" +
                    (quantised is { } q ? $" ({q})." : "."));
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
