namespace LoRA.Managed.Models;

/// <summary>What <see cref="LmScoring.Score"/> measured.</summary>
/// <param name="Tokens">Predicted tokens: in each window, every token but the first.</param>
/// <param name="MeanNll">Mean negative log-likelihood per predicted token, in nats.</param>
public sealed record ScoreResult(long Tokens, double MeanNll)
{
    /// <summary><c>exp(mean_nll)</c>.</summary>
    public double Perplexity => Math.Exp(MeanNll);
}
