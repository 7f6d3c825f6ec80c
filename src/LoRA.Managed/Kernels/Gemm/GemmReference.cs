namespace LoRA.Managed.Kernels;

/// <summary>
/// The plain reference GEMM: <c>C = alpha·op(A)·op(B) + beta·C</c> as a naive i-j-k triple loop.
/// It is the twin every optimised GEMM is tested against and the benchmarks' baseline; it is
/// kept deliberately simple (no blocking, no SIMD) so that it is obviously right.
/// </summary>
public static class GemmReference
{
    /// <summary>
    /// Row-major <c>C[m×n] = alpha·op(A)·op(B) + beta·C</c>. op(A) is m×k: A is stored m×k
    /// (row stride <paramref name="lda"/>) or, when <paramref name="transA"/>, k×m. op(B) is k×n: B is
    /// stored k×n or, when <paramref name="transB"/>, n×k. When beta is 0, C is not read (BLAS semantics).
    /// </summary>
    public static void Multiply(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        GemmArguments.Check(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                float sum = 0f;
                for (int p = 0; p < k; p++)
                {
                    float av = transA ? a[p * lda + i] : a[i * lda + p];
                    float bv = transB ? b[j * ldb + p] : b[p * ldb + j];
                    sum += av * bv;
                }
                int ci = i * ldc + j;
                c[ci] = beta == 0f ? alpha * sum : alpha * sum + beta * c[ci];
            }
        }
    }
}
