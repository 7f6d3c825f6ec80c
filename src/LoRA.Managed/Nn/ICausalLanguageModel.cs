using LoRA.Managed.Tensors;

namespace LoRA.Managed.Nn;

/// <summary>
/// A model that maps token ids to next-token logits: what the language-model task trains and scores, whatever the
/// architecture (the character GPT, a Hugging Face causal LM) and whether or not adapters wrap it.
/// </summary>
public interface ICausalLanguageModel
{
    /// <summary>Logits (batch·time, vocabulary) for <paramref name="ids"/>, row-major (batch, time).</summary>
    Tensor Forward(ReadOnlySpan<int> ids, int batch, int time);

    /// <summary>Size of the vocabulary (the logits' last dimension).</summary>
    int VocabSize { get; }

    /// <summary>The longest sequence the model accepts.</summary>
    int MaxSequenceLength { get; }

    /// <summary>
    /// Where the model was loaded from (a Hugging Face folder), written as PEFT's <c>base_model_name_or_path</c> in an
    /// adapter's config; null for a model built in code.
    /// </summary>
    string? NameOrPath => null;
}
