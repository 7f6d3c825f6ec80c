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

    /// <summary>
    /// The training loss: mean cross-entropy of the logits for <paramref name="ids"/> (batch, time) against
    /// <paramref name="targets"/> (−100 ignored), recorded for backward. The default is
    /// <c>CrossEntropy(Forward(ids), targets)</c>; a model may fuse its head into the loss to avoid holding the logits.
    /// </summary>
    Tensor Loss(ReadOnlySpan<int> ids, ReadOnlySpan<int> targets, int batch, int time) =>
        Autograd.Functional.CrossEntropy(Forward(ids, batch, time), targets);

    /// <summary>
    /// Mean next-token cross-entropy (nats per kept token) of <paramref name="ids"/> (batch, time) against
    /// <paramref name="targets"/> (−100 ignored), without recording gradients: what validation reports. The default
    /// runs <see cref="Forward"/> on the whole batch; a model with a key/value cache scores it in chunks instead,
    /// holding a fraction of the activations and logits.
    /// </summary>
    double NextTokenLoss(ReadOnlySpan<int> ids, ReadOnlySpan<int> targets, int batch, int time)
    {
        using var _ = Autograd.Tape.NoGrad();
        return Autograd.Functional.CrossEntropy(Forward(ids, batch, time), targets).Item();
    }
}
