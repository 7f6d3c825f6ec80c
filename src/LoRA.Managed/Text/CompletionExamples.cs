namespace LoRA.Managed.Text;

/// <summary>
/// Supervised fine-tuning rows: each example's tokens (prompt then completion), cut to <c>length + 1</c> tokens and
/// right-padded to one length, with next-token targets that are <see cref="IgnoreIndex"/> wherever the loss must not
/// look: on prompt tokens (as SFT trainers' completion-only loss) and on padding. Right padding needs no attention
/// mask in a causal model: a position never attends to the pads after it.
/// </summary>
public sealed class CompletionExamples
{
    /// <summary>The target that keeps a position out of the loss (PyTorch's <c>ignore_index</c>).</summary>
    public const int IgnoreIndex = -100;

    private readonly int[] _inputs, _targets;

    /// <summary>
    /// Builds the rows from (tokens, prompt length) pairs; rows are <paramref name="maxLength"/> long or, if every
    /// example is shorter, as long as the longest. Examples with no completion token inside the length are dropped.
    /// </summary>
    /// <exception cref="ArgumentException">The length is below 1, a prompt length is out of range, or no example has a
    /// completion token.</exception>
    public CompletionExamples(IReadOnlyList<(int[] Tokens, int PromptLength)> examples, int maxLength, int padId = 0)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (maxLength < 1)
            throw new ArgumentException($"CompletionExamples: the length must be at least 1, got {maxLength}.");
        var kept = new List<(int[] Tokens, int PromptLength)>();
        foreach (var (tokens, prompt) in examples)
        {
            if (prompt < 0 || prompt > tokens.Length)
                throw new ArgumentException($"CompletionExamples: prompt length {prompt} is outside " +
                    $"0..{tokens.Length}.");
            // Targets are tokens 1..n; at least one must be a completion token within the cut.
            if (Math.Max(prompt, 1) < Math.Min(tokens.Length, maxLength + 1)) kept.Add((tokens, prompt));
        }
        if (kept.Count == 0)
            throw new ArgumentException("CompletionExamples: no example has a completion token to learn (all empty, " +
                "or prompts longer than the context).");
        Time = Math.Min(maxLength, kept.Max(e => e.Tokens.Length) - 1);
        Count = kept.Count;
        _inputs = new int[Count * Time];
        _targets = new int[Count * Time];
        Array.Fill(_inputs, padId);
        Array.Fill(_targets, IgnoreIndex);
        for (int r = 0; r < Count; r++)
        {
            var (tokens, prompt) = kept[r];
            int n = Math.Min(tokens.Length - 1, Time);
            for (int t = 0; t < n; t++)
            {
                _inputs[r * Time + t] = tokens[t];
                if (t + 1 >= prompt) _targets[r * Time + t] = tokens[t + 1];
            }
            SupervisedTokens += n - Math.Max(0, prompt - 1);
        }
    }

    /// <summary>Rows.</summary>
    public int Count { get; }

    /// <summary>Positions per row.</summary>
    public int Time { get; }

    /// <summary>Targets that count in the loss, over all rows.</summary>
    public long SupervisedTokens { get; }

    /// <summary>Row <paramref name="index"/>'s input ids.</summary>
    public ReadOnlySpan<int> Inputs(int index) => _inputs.AsSpan(index * Time, Time);

    /// <summary>Row <paramref name="index"/>'s targets (<see cref="IgnoreIndex"/> where not supervised).</summary>
    public ReadOnlySpan<int> Targets(int index) => _targets.AsSpan(index * Time, Time);
}
