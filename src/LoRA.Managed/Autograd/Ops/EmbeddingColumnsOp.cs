using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// Embedding lookup in a transposed table, PEFT's <c>F.embedding(x, lora_embedding_A.T)</c>: A is (r, V) and output
/// row n is column <c>ids[n]</c> of A, so the output has the ids' shape with r appended. Backward scatter-adds:
/// <c>∂A[k, ids[n]] += ∂y[n, k]</c> (a repeated id accumulates every occurrence). Reading columns in place spares the
/// transposed copy of A that the plain <see cref="EmbeddingOp"/> would need each step.
/// </summary>
internal sealed class EmbeddingColumnsOp : Op
{
    private Tensor _table = null!;
    // A copy of the ids (the caller's span may be refilled before backward), kept on the reused record.
    private int[] _ids = [];

    public override string Name => "embedding_columns";

    /// <summary>Looks up the columns <paramref name="ids"/> of <paramref name="table"/> (r, V). A caller that has just
    /// looked the same ids up in a table of the same V (<c>LoraEmbedding</c>, after its base lookup) passes
    /// <paramref name="idsChecked"/> so they are not checked twice each step.</summary>
    public static Tensor Apply(Tensor table, ReadOnlySpan<int> ids, int[] idsShape, bool idsChecked = false)
    {
        Shapes.RequireMatrix(table, "embedding_columns", "table");
        int r = table.Shape[0], vocab = table.Shape[1];
        if (!idsChecked) EmbeddingOp.CheckIds("embedding_columns", ids, idsShape, vocab, table.Shape, "table (r×V)");
        Tensor y = EmbeddingOp.NewOutput(idsShape, r);
        ReadOnlySpan<float> a = table.Data;
        Span<float> yd = y.Data;
        for (int n = 0; n < ids.Length; n++)
            for (int k = 0; k < r; k++) yd[n * r + k] = a[k * vocab + ids[n]];
        if (Tape.ShouldRecord(table))
        {
            var op = Tape.Record<EmbeddingColumnsOp>(y);
            op._table = table;
            EmbeddingOp.KeepIds(ref op._ids, ids);
        }
        return y;
    }

    public override void Backward()
    {
        if (!_table.RequiresGrad) return;
        int r = _table.Shape[0], vocab = _table.Shape[1];
        Span<float> da = _table.EnsureGrad();
        ReadOnlySpan<float> dy = Output.Grad;
        for (int n = 0; n < _ids.Length; n++)
            for (int k = 0; k < r; k++) da[k * vocab + _ids[n]] += dy[n * r + k];
    }
}
