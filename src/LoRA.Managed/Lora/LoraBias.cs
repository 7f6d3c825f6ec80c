namespace LoRA.Managed.Lora;

/// <summary>Which biases train alongside the adapter (PEFT's <c>bias</c> option); trained biases are saved with
/// it.</summary>
public enum LoraBias
{
    /// <summary><c>"none"</c>: every bias stays frozen.</summary>
    None,

    /// <summary><c>"all"</c>: every bias in the model trains.</summary>
    All,

    /// <summary><c>"lora_only"</c>: only the biases of the layers wrapped by LoRA train.</summary>
    LoraOnly,
}
