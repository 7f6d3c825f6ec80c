using LoRA.Managed.Models;
using LoRA.Managed.Text;

namespace LoRA.Managed.Recipes;

/// <summary>
/// <c>lora generate</c>: encode the prompt (special tokens as the tokenizer's config says), generate with the KV cache
/// (<see cref="LmGeneration"/>), and hand each piece of decoded text to <c>onText</c> as soon as it is complete.
/// </summary>
public static class LmGenerationRecipe
{
    /// <summary>The JSON report's fields.</summary>
    /// <param name="PromptIds">The prompt's ids.</param>
    /// <param name="NewIds">The generated ids (ending with EOS when generation stopped there).</param>
    /// <param name="Text">The decoded new text as it continues the prompt (special tokens skipped).</param>
    public sealed record Result(int[] PromptIds, int[] NewIds, string Text);

    /// <summary>Generates after <paramref name="prompt"/>.</summary>
    /// <exception cref="ArgumentException">The prompt encodes to no ids or does not fit, or a setting is out of
    /// range.</exception>
    public static Result Run(CausalLm model, ITextTokenizer tokenizer, string prompt, GenerationSettings settings,
        Action<string>? onText = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        int[] promptIds = tokenizer.Encode(prompt);
        var eos = settings.EosTokenIds
            ?? (model.EosTokenIds.Count > 0 ? model.EosTokenIds : tokenizer.EosTokenId is { } e ? [e] : []);
        ITextStreamDecoder stream = tokenizer.CreateStreamDecoder(skipSpecialTokens: true);
        // The prompt goes through the decoder first, unprinted: a decoder that strips a word's leading space at the
        // start of a text (SentencePiece's) then sees the first new token after its context, so "who" + "▁lived"
        // prints "who lived", not "wholived".
        foreach (int id in promptIds) stream.Append(id);
        var text = new System.Text.StringBuilder();
        int[] newIds = model.Generate(promptIds, settings with { EosTokenIds = eos }, id =>
        {
            string piece = stream.Append(id);
            if (piece.Length == 0) return;
            text.Append(piece);
            onText?.Invoke(piece);
        });
        // The new text as it reads after the prompt (with its leading space), as printed.
        string head = tokenizer.Decode(promptIds, skipSpecialTokens: true);
        string all = tokenizer.Decode([.. promptIds, .. newIds], skipSpecialTokens: true);
        return new Result(promptIds, newIds,
            all.StartsWith(head, StringComparison.Ordinal) ? all[head.Length..]
                : tokenizer.Decode(newIds, skipSpecialTokens: true));
    }
}
