namespace LoRA.Managed.Lora;

/// <summary>How <see cref="PeftModel.AddWeightedAdapter"/> combines adapters (PEFT's
/// <c>combination_type</c>).</summary>
public enum CombinationType
{
    /// <summary>PEFT's <c>"linear"</c>: weighted sums of the factors themselves, each weight split as a square root
    /// between A and B; the adapters must share one rank. Not the weighted sum of the ΔWs (cross terms
    /// remain).</summary>
    Linear,

    /// <summary>PEFT's <c>"cat"</c>: the factors stacked along the rank, so ΔW is exactly the weighted sum of the
    /// adapters' ΔWs; the rank is the sum of theirs.</summary>
    Cat,

    /// <summary>PEFT's <c>"svd"</c>: the weighted sum of the ΔWs, truncated by SVD to the new rank.</summary>
    Svd,
}
