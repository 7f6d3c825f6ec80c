namespace LoRA.Managed.Kernels;

/// <summary>Argument checks shared by every GEMM, so a bad call names the argument and the sizes.</summary>
internal static class GemmArguments
{
    public static void Check(bool transA, bool transB, int m, int n, int k,
        int aLength, int lda, int bLength, int ldb, int cLength, int ldc)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentException($"Gemm: negative size m={m}, n={n}, k={k}.");
        int aRows = transA ? k : m, aCols = transA ? m : k;
        int bRows = transB ? n : k, bCols = transB ? k : n;
        CheckMatrix("A", aRows, aCols, aLength, lda, transA);
        CheckMatrix("B", bRows, bCols, bLength, ldb, transB);
        CheckMatrix("C", m, n, cLength, ldc, false);
    }

    private static void CheckMatrix(string name, int rows, int cols, int length, int ld, bool trans)
    {
        if (rows == 0 || cols == 0) return;
        if (ld < cols)
            throw new ArgumentException($"Gemm: leading dimension of {name} is {ld}, less than its {cols} " +
                $"columns{(trans ? " (stored transposed)" : "")}.");
        long needed = (long)(rows - 1) * ld + cols;
        if (length < needed)
            throw new ArgumentException($"Gemm: {name} is {rows}×{cols}{(trans ? " (stored transposed)" : "")} with " +
                $"leading dimension {ld} and needs {needed} floats, but its span has {length}.");
    }
}
