using LoRA.Managed.Tensors;

namespace LoRA.Managed.Lora;

/// <summary>
/// The result of <see cref="LowRank.Approximate"/>: the SVD <c>W = U·diag(S)·Vᵀ</c> of an m×n matrix and
/// its rank-r truncation in the blog's factor naming.
/// </summary>
/// <param name="U">Left singular vectors, m×m (column j pairs with <c>S[j]</c>).</param>
/// <param name="S">Singular values, descending, length min(m, n), in double precision.</param>
/// <param name="Vt">Right singular vectors transposed, n×n (row j pairs with <c>S[j]</c>).</param>
/// <param name="A">The blog's A = <c>U_r·√S_r</c>, m×r (PEFT's <c>lora_B</c>).</param>
/// <param name="B">The blog's B = <c>√S_r·V_rᵀ</c>, r×n (PEFT's <c>lora_A</c>).</param>
/// <param name="Approximation">W_r = A·B, m×n, the best rank-r approximation in Frobenius norm (Eckart–Young).</param>
/// <param name="FrobeniusErrors">
/// Entry k is ‖W − W_k‖_F computed directly from the reconstruction, for k = 0..min(m, n);
/// Eckart–Young says it equals √(Σ_{j≥k} σ_j²).
/// </param>
public sealed record LowRankApproximation(
    Tensor U, double[] S, Tensor Vt, Tensor A, Tensor B, Tensor Approximation, double[] FrobeniusErrors)
{
    /// <summary>The rank r of the truncation.</summary>
    public int Rank => A.Shape[1];
}
