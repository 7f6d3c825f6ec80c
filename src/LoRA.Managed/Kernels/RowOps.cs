using System.Runtime.Intrinsics;

namespace LoRA.Managed.Kernels;

/// <summary>
/// Row-broadcast operations on a row-major matrix: bias add and its gradient (column sums).
/// <see cref="ElementwiseReference"/> holds the scalar twins.
/// </summary>
/// <remarks>
/// Every linear layer of the GPT step runs both on 2048×64 to 2048×256 matrices. Done as one
/// <c>TensorPrimitives</c> call per row of 64 floats, the call overhead was most of their ~14–36 µs, and they ran on
/// one core while the other waited for the next GEMM. Here a bias is added 16 floats a step in one loop per row,
/// and a column sum keeps up to four vectors of columns in registers while it walks the rows in order; both split
/// over threads where no sum changes its order (rows for the bias add, 16-column blocks for the sums), so the bits
/// are the serial loop's on any thread count.
/// </remarks>
public static unsafe class RowOps
{
    // Below this many elements per thread a second core costs more than it saves.
    private const int MinElementsPerThread = 32 * 1024;

    /// <summary><c>y[i, :] += bias</c> for every row of the rows×cols matrix <paramref name="y"/>.</summary>
    public static void AddBias(Span<float> y, ReadOnlySpan<float> bias, int rows, int cols)
    {
        Check(y.Length, rows, cols, bias.Length, "RowOps.AddBias");
        if (rows == 0 || cols == 0) return;
        fixed (float* py = y, pb = bias)
            ParallelRange.For(new AddBiasBody(py, pb, cols), rows, 1, Math.Max(1, MinElementsPerThread / cols));
    }

    /// <summary><c>sums[j] += Σᵢ x[i, j]</c>, rows added in order: the bias gradient is the column sum of the output
    /// gradient.</summary>
    public static void AccumulateColumnSums(ReadOnlySpan<float> x, int rows, int cols, Span<float> sums)
    {
        Check(x.Length, rows, cols, sums.Length, "RowOps.AccumulateColumnSums");
        if (rows == 0 || cols == 0) return;
        int blocks = (cols + 15) / 16;
        fixed (float* px = x, ps = sums)
            ParallelRange.For(new ColumnSumsBody(px, ps, rows, cols), blocks, 1,
                Math.Max(1, MinElementsPerThread / (16 * rows)));
    }

    private readonly struct AddBiasBody(float* y, float* bias, int cols) : IRangeBody
    {
        public void Run(int start, int end)
        {
            for (int i = start; i < end; i++)
            {
                float* row = y + (long)i * cols;
                int j = 0;
                if (Vector512.IsHardwareAccelerated)
                    for (; j + 16 <= cols; j += 16)
                        Vector512.Store(Vector512.Load(row + j) + Vector512.Load(bias + j), row + j);
                for (; j < cols; j++) row[j] += bias[j];
            }
        }
    }

    // Items are 16-column blocks; the last may be partial. Each column's sum starts from sums[j] and adds the rows
    // in order, exactly as the reference does, whichever block or thread computes it.
    private readonly struct ColumnSumsBody(float* x, float* sums, int rows, int cols) : IRangeBody
    {
        public void Run(int start, int end)
        {
            int j = start * 16, stop = Math.Min(cols, end * 16);
            if (Vector512.IsHardwareAccelerated)
            {
                for (; j + 64 <= stop; j += 64) Sum4(j);
                for (; j + 16 <= stop; j += 16) Sum1(j);
            }
            for (; j < stop; j++)
            {
                float s = sums[j];
                for (int i = 0; i < rows; i++) s += x[(long)i * cols + j];
                sums[j] = s;
            }
        }

        // Four independent chains: the adds' latency is hidden while each chain keeps the rows' order.
        private void Sum4(int j)
        {
            Vector512<float> s0 = Vector512.Load(sums + j), s1 = Vector512.Load(sums + j + 16);
            Vector512<float> s2 = Vector512.Load(sums + j + 32), s3 = Vector512.Load(sums + j + 48);
            float* p = x + j;
            for (int i = 0; i < rows; i++, p += cols)
            {
                s0 += Vector512.Load(p); s1 += Vector512.Load(p + 16);
                s2 += Vector512.Load(p + 32); s3 += Vector512.Load(p + 48);
            }
            Vector512.Store(s0, sums + j); Vector512.Store(s1, sums + j + 16);
            Vector512.Store(s2, sums + j + 32); Vector512.Store(s3, sums + j + 48);
        }

        private void Sum1(int j)
        {
            Vector512<float> s = Vector512.Load(sums + j);
            float* p = x + j;
            for (int i = 0; i < rows; i++, p += cols) s += Vector512.Load(p);
            Vector512.Store(s, sums + j);
        }
    }

    private static void Check(int length, int rows, int cols, int vector, string op)
    {
        if (rows < 0 || cols < 0 || (long)rows * cols != length)
            throw new ArgumentException($"{op}: matrix span has {length} elements, not {rows}×{cols}.");
        if (vector != cols)
            throw new ArgumentException($"{op}: vector has {vector} elements, the matrix {cols} columns.");
    }
}
