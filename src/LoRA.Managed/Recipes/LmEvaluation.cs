using LoRA.Managed.Models;
using LoRA.Managed.Text;

namespace LoRA.Managed.Recipes;

/// <summary>
/// <c>lora lm-eval</c>: tokenize a UTF-8 text with the model's tokenizer (special tokens as its config says) and score
/// it in consecutive non-overlapping windows of at most N tokens (<see cref="LmScoring"/>).
/// </summary>
public static class LmEvaluation
{
    /// <summary>The JSON report's figures.</summary>
    /// <param name="Tokens">Predicted tokens.</param>
    /// <param name="MeanNll">Nats per predicted token.</param>
    /// <param name="Perplexity"><c>exp(mean_nll)</c>.</param>
    /// <param name="Context">The window length used.</param>
    public sealed record Result(long Tokens, double MeanNll, double Perplexity, int Context);

    /// <summary>Scores <paramref name="text"/>; <paramref name="context"/> 0 means the model's maximum
    /// positions.</summary>
    /// <exception cref="ArgumentException">The context is out of range or the text has fewer than two
    /// tokens.</exception>
    public static Result Run(CausalLm model, ITextTokenizer tokenizer, string text, int context = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        int[] ids = tokenizer.Encode(text);
        if (ids.Length < 2)
            throw new ArgumentException($"lm-eval: the text gives {ids.Length} token(s); at least 2 are " +
                "needed to predict one.");
        int n = context == 0 ? model.Config.MaxContext : context;
        ScoreResult r = model.Score(ids, n);
        return new Result(r.Tokens, r.MeanNll, r.Perplexity, n);
    }
}
