using MathNet.Numerics.LinearAlgebra;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Lora;

/// <summary>
/// The blog's first example: a matrix's truncated SVD as a product of two thin factors. Computed in
/// double precision with MathNet.Numerics; singular-vector signs are the library's choice, and only
/// the products (A·B, W_r) are sign-independent, so compare those across libraries.
/// </summary>
public static class LowRank
{
    /// <summary>Splits W (m×n) into U, S, Vᵀ and the rank-<paramref name="rank"/> factors A (m×r) and B (r×n) with A·B
    /// = W_r.</summary>
    /// <exception cref="ArgumentException">W is not a matrix, or the rank is outside 1..min(m, n).</exception>
    public static LowRankApproximation Approximate(Tensor weight, int rank)
    {
        ArgumentNullException.ThrowIfNull(weight);
        Shapes.RequireMatrix(weight, "LowRank.Approximate", "W");
        int m = weight.Shape[0], n = weight.Shape[1], k = Math.Min(m, n);
        if (rank < 1 || rank > k)
            throw new ArgumentException($"LowRank.Approximate: rank {rank} is outside 1..{k} for W of shape " +
                $"{Shapes.Format(weight.Shape)}.");
        Matrix<double> w = ToMatrix(weight);
        var svd = w.Svd(computeVectors: true);
        double[] s = svd.S.Take(k).ToArray();
        var (a, b) = Factors(svd.U, s, svd.VT, rank, 1.0);
        Matrix<double> approx = a * b;

        var errors = new double[k + 1];
        Matrix<double> partial = Matrix<double>.Build.Dense(m, n);
        errors[0] = w.FrobeniusNorm();
        for (int j = 0; j < k; j++)
        {
            partial += s[j] * svd.U.Column(j).OuterProduct(svd.VT.Row(j));
            errors[j + 1] = (w - partial).FrobeniusNorm();
        }
        return new LowRankApproximation(ToTensor(svd.U), s, ToTensor(svd.VT), ToTensor(a), ToTensor(b),
            ToTensor(approx), errors);
    }

    /// <summary>
    /// <c>W ← W − scale·B·A</c> from the float factors actually stored in <paramref name="b"/> and
    /// <paramref name="a"/>, formed in double and rounded once, so the residual cancels exactly what the adapter adds
    /// (PiSSA's and OLoRA's base).
    /// </summary>
    internal static void WriteResidual(Matrix<double> w, double scale, Tensor b, Tensor a, Tensor baseWeight) =>
        CopyTo(w - scale * (ToMatrix(b) * ToMatrix(a)), baseWeight.Data);

    /// <summary>
    /// The thin factors of the truncated SVD of <paramref name="weight"/> with the singular values divided by
    /// <paramref name="divisor"/>: <c>left = U_r·√(S_r/d)</c> (m×r), <c>right = √(S_r/d)·V_rᵀ</c> (r×n),
    /// so <c>d·left·right = W_r</c>. Also returns W in double for residuals.
    /// </summary>
    internal static (Matrix<double> Left, Matrix<double> Right, Matrix<double> W) TruncatedFactors(Tensor weight,
        int rank, double divisor)
    {
        Matrix<double> w = ToMatrix(weight);
        var svd = w.Svd(computeVectors: true);
        var (left, right) = Factors(svd.U, svd.S.ToArray(), svd.VT, rank, divisor);
        return (left, right, w);
    }

    /// <summary>
    /// <see cref="TruncatedFactors"/> from a randomized SVD, as <c>torch.svd_lowrank(W, q=rank, niter)</c> computes
    /// it (Halko, Martinsson &amp; Tropp, "Finding structure with randomness", 2011, Algorithms 4.1 and 4.4): an
    /// orthonormal basis Q of W·Ω for a Gaussian n×r sketch Ω, refined by <paramref name="niter"/> power iterations
    /// (Q ← qr(Wᵀ·Q), Q ← qr(W·Q)), then the SVD of the small r×n matrix Qᵀ·W, whose left vectors Q lifts back.
    /// Exact when W has rank at most r; otherwise the error shrinks with the iterations and the spectrum's decay.
    /// </summary>
    internal static (Matrix<double> Left, Matrix<double> Right,
        Matrix<double> W) RandomizedTruncatedFactors(Tensor weight, int rank,
        double divisor, int niter, TorchGenerator generator)
    {
        Matrix<double> w = ToMatrix(weight);
        int n = w.ColumnCount;
        var sketch = new float[n * rank];
        generator.FillNormal(sketch, 0f, 1f);
        Matrix<double> omega = Matrix<double>.Build.Dense(n, rank, (i, j) => sketch[i * rank + j]);
        Matrix<double> q = Orthonormal(w * omega);
        for (int i = 0; i < niter; i++)
        {
            q = Orthonormal(w.TransposeThisAndMultiply(q));
            q = Orthonormal(w * q);
        }
        var svd = q.TransposeThisAndMultiply(w).Svd(computeVectors: true);   // (r×n) = U_b·S·Vᵀ
        var (left, right) = Factors(q * svd.U, svd.S.ToArray(), svd.VT, rank, divisor);
        return (left, right, w);
    }

    // The Q of a thin QR: an orthonormal basis of the columns.
    private static Matrix<double> Orthonormal(Matrix<double> x) =>
        x.QR(MathNet.Numerics.LinearAlgebra.Factorization.QRMethod.Thin).Q;

    private static (Matrix<double> A, Matrix<double> B) Factors(Matrix<double> u, double[] s, Matrix<double> vt,
        int rank, double divisor)
    {
        int m = u.RowCount, n = vt.ColumnCount;
        var a = Matrix<double>.Build.Dense(m, rank);
        var b = Matrix<double>.Build.Dense(rank, n);
        for (int j = 0; j < rank; j++)
        {
            // sqrt splits each σ evenly between the factors, as the blog does; σ ≥ 0 so the root is real.
            double root = Math.Sqrt(s[j] / divisor);
            for (int i = 0; i < m; i++) a[i, j] = u[i, j] * root;
            for (int c = 0; c < n; c++) b[j, c] = vt[j, c] * root;
        }
        return (a, b);
    }

    internal static Matrix<double> ToMatrix(Tensor t)
    {
        int m = t.Shape[0], n = t.Shape[1];
        var d = new double[m * n];
        ReadOnlySpan<float> src = t.Data;
        for (int i = 0; i < d.Length; i++) d[i] = src[i];
        return Matrix<double>.Build.DenseOfRowMajor(m, n, d);
    }

    internal static Tensor ToTensor(Matrix<double> m)
    {
        var t = new Tensor(m.RowCount, m.ColumnCount);
        CopyTo(m, t.Data);
        return t;
    }

    internal static void CopyTo(Matrix<double> m, Span<float> dst)
    {
        int cols = m.ColumnCount;
        for (int i = 0; i < m.RowCount; i++)
            for (int j = 0; j < cols; j++)
                dst[i * cols + j] = (float)m[i, j];
    }
}
