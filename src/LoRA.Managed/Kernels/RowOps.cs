using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Kernels;

/// <summary>Row-broadcast operations on a row-major matrix: bias add and its gradient (column sums).</summary>
public static class RowOps
{
    /// <summary><c>y[i, :] += bias</c> for every row of the rows×cols matrix <paramref name="y"/>.</summary>
    public static void AddBias(Span<float> y, ReadOnlySpan<float> bias, int rows, int cols)
    {
        Check(y.Length, rows, cols, bias.Length, "RowOps.AddBias");
        for (int i = 0; i < rows; i++)
        {
            Span<float> row = y.Slice(i * cols, cols);
            TensorPrimitives.Add(row, bias, row);
        }
    }

    /// <summary><c>sums[j] += Σᵢ x[i, j]</c>: the bias gradient is the column sum of the output gradient.</summary>
    public static void AccumulateColumnSums(ReadOnlySpan<float> x, int rows, int cols, Span<float> sums)
    {
        Check(x.Length, rows, cols, sums.Length, "RowOps.AccumulateColumnSums");
        for (int i = 0; i < rows; i++)
            TensorPrimitives.Add(sums, x.Slice(i * cols, cols), sums);
    }

    private static void Check(int length, int rows, int cols, int vector, string op)
    {
        if (rows < 0 || cols < 0 || (long)rows * cols != length)
            throw new ArgumentException($"{op}: matrix span has {length} elements, not {rows}×{cols}.");
        if (vector != cols)
            throw new ArgumentException($"{op}: vector has {vector} elements, the matrix {cols} columns.");
    }
}
