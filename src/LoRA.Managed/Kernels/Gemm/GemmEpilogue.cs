using System.Runtime.Intrinsics;

namespace LoRA.Managed.Kernels;

/// <summary>
/// What a product does to its block of C once the block is final: add a bias row and, optionally, apply ReLU,
/// <c>C[i, j] = max(C[i, j] + bias[j], 0)</c>. Each thread of a split product applies it to the columns (or rows) it
/// has just computed, while they are still in its own cache.
/// </summary>
/// <remarks>
/// The unfused forward ran the bias add and the ReLU as two passes on the calling thread after the product (the
/// MLP's are too small to split), so half of C crossed from the other core's cache twice per layer. The bits are
/// those passes': one rounded add (<see cref="RowOps.AddBias"/>), then <c>Vector512.Max(x, 0)</c>, which like
/// <c>TensorPrimitives.Max(x, 0f)</c> (<see cref="Relu.Forward"/>) returns NaN for NaN and +0 for −0.
/// </remarks>
internal readonly unsafe struct GemmEpilogue(float* bias, bool relu)
{
    /// <summary>No bias and no ReLU: C is left as computed.</summary>
    public bool IsNone => bias == null && !relu;

    /// <summary>Applies the epilogue to the <paramref name="rows"/>×<paramref name="cols"/> block at
    /// <paramref name="c"/> whose first column is column <paramref name="col0"/> of C.</summary>
    public void Apply(float* c, int rows, int cols, int ldc, int col0)
    {
        if (IsNone) return;
        float* b = bias == null ? null : bias + col0;
        for (int i = 0; i < rows; i++)
        {
            float* row = c + (long)i * ldc;
            int j = 0;
            if (Vector512.IsHardwareAccelerated)
                for (; j + 16 <= cols; j += 16)
                {
                    Vector512<float> x = Vector512.Load(row + j);
                    if (b != null) x += Vector512.Load(b + j);
                    if (relu) x = Vector512.Max(x, Vector512<float>.Zero);
                    x.Store(row + j);
                }
            else if (Vector256.IsHardwareAccelerated)
                for (; j + 8 <= cols; j += 8)
                {
                    Vector256<float> x = Vector256.Load(row + j);
                    if (b != null) x += Vector256.Load(b + j);
                    if (relu) x = Vector256.Max(x, Vector256<float>.Zero);
                    x.Store(row + j);
                }
            for (; j < cols; j++)
            {
                float x = row[j];
                if (b != null) x += b[j];
                if (relu) x = MathF.Max(x, 0f);
                row[j] = x;
            }
        }
    }
}
