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
    /// OLoRA (Büyükakyüz 2024; PEFT's <c>"olora"</c>): the thin QR of W, <c>lora_B = Q[:, :r]</c> (orthonormal
    /// columns), <c>lora_A = R[:r]</c>, and the base weight replaced by <c>W − scale·B·A</c>, so the function is
    /// unchanged at step
    /// 0. Like PiSSA, loading such an adapter recomputes the residual from the original base.
    /// </summary>
    Olora,

    /// <summary>
    /// LoftQ (Li et al. 2023, "LoftQ: LoRA-Fine-Tuning-Aware Quantization"; PEFT's <c>"loftq"</c> with
    /// <c>loftq_config</c>): alternately quantise the residual to NF4 and take the best rank-r approximation of what
    /// the quantisation lost, <see cref="LoraConfig.LoftQIterations"/> times, so that <c>Q + B·A ≈ W</c> with Q the
    /// quantised base. The base weight is replaced by Q (dequantised), and, as in PEFT, the factors are not divided by
    /// the scale. Loading such an adapter recomputes Q from the original base.
    /// </summary>
    LoftQ,
}

/// <summary>What an initialisation needs of the base weight.</summary>
public static class LoraInitRules
{
    /// <summary>True when the initialisation reads the base weight (SVD, PiSSA, OLoRA, LoftQ): it needs finite float
    /// weights, not a quantised or Conv1D base.</summary>
    public static bool ReadsBase(this LoraInit init) =>
        init is LoraInit.Svd or LoraInit.Pissa or LoraInit.Olora or LoraInit.LoftQ;

    /// <summary>True when the initialisation rewrites the base weight (PiSSA, OLoRA, LoftQ): loading the adapter
    /// rebuilds that base from the original, so it cannot sit beside other adapters on one base.</summary>
    public static bool RewritesBase(this LoraInit init) => init is LoraInit.Pissa or LoraInit.Olora or LoraInit.LoftQ;
}
