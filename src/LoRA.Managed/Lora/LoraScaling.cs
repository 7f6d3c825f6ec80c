namespace LoRA.Managed.Lora;

/// <summary>
/// How the adapter's update is scaled: <c>ΔW = scale·B·A</c>.
/// </summary>
public enum LoraScaling
{
    /// <summary>scale = α, as in the blog (<c>W + α·A·B</c> in its naming).</summary>
    Alpha,

    /// <summary>scale = α / r, PEFT's default (Hu et al. 2021, §4.1).</summary>
    AlphaOverRank,

    /// <summary>scale = α / √r, rank-stabilised LoRA (Kalajdzievski 2023; PEFT's <c>use_rslora=True</c>).</summary>
    RsLora,
}
