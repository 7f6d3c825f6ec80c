namespace LoRA.Managed.Text;

/// <summary>
/// Splits a token stream into a training head and a validation tail, contiguously, as nanoGPT's
/// <c>prepare.py</c> does (<c>data[:int(n*0.9)]</c>, <c>data[int(n*0.9):]</c>): windows of the two parts never
/// share text, which a random split of overlapping windows would allow.
/// </summary>
public static class TrainValidationSplit
{
    /// <summary>The first <c>n − ⌊n·f⌋</c> tokens for training and the last <c>⌊n·f⌋</c> for validation.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The fraction is not in (0, 1) or leaves a part empty.</exception>
    public static (int[] Train, int[] Validation) Split(ReadOnlySpan<int> tokens, double validationFraction = 0.1)
    {
        if (!(validationFraction > 0 && validationFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction,
                "TrainValidationSplit: the validation fraction must be in (0, 1).");
        int validation = (int)(tokens.Length * validationFraction);
        if (validation == 0 || validation == tokens.Length)
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction,
                $"TrainValidationSplit: {tokens.Length} tokens at fraction {validationFraction} leave a part empty.");
        int train = tokens.Length - validation;
        return (tokens[..train].ToArray(), tokens[train..].ToArray());
    }
}
