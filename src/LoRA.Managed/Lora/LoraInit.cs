namespace LoRA.Managed.Lora;

/// <summary>How a new adapter's factors (and, for PiSSA, the base weight) are initialised.</summary>
public enum LoraInit
{
    /// <summary>
    /// The blog's choice: the top-r singular triplets of W, <c>lora_B = U_r·√S_r</c> (out×r) and
    /// <c>lora_A = √S_r·V_rᵀ</c> (r×in), so <c>B·A = W_r</c>. The base weight is left unchanged,
    /// hence the step-0 weight is <c>W + scale·W_r</c>.
    /// </summary>
    Svd,

    /// <summary>
    /// PiSSA (Meng et al. 2024): the same factors computed from <c>S_r/scale</c> so that <c>scale·B·A = W_r</c>,
    /// and the base weight replaced by the residual <c>W − W_r</c>: the function is unchanged at step 0.
    /// </summary>
    Pissa,

    /// <summary>PEFT's default: lora_A Kaiming-uniform with a = √5 (uniform in ±1/√in), lora_B zero, so ΔW =
    /// 0.</summary>
    Default,

    /// <summary>PEFT's <c>"gaussian"</c>: lora_A normal with standard deviation 1/r, lora_B zero.</summary>
    Gaussian,

    /// <summary>
    /// OLoRA (Büyükakyüz 2024; PEFT's <c>"olora"</c>): the thin QR of W, <c>lora_B = Q[:, :r]</c> (orthonormal columns),
    /// <c>lora_A = R[:r]</c>, and the base weight replaced by <c>W − scale·B·A</c>, so the function is unchanged at step
    /// 0. Like PiSSA, loading such an adapter recomputes the residual from the original base.
    /// </summary>
    Olora,
}
