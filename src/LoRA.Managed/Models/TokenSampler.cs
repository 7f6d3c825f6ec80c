using LoRA.Managed.Tensors;

namespace LoRA.Managed.Models;

/// <summary>
/// Picks the next token from a row of logits as Hugging Face's logits warpers do, in their order
/// (<c>TemperatureLogitsWarper</c>, <c>TopKLogitsWarper</c>, <c>TopPLogitsWarper</c>), then draws from the softmax.
/// Greedy is the arg-max (the first on ties, as <c>torch.argmax</c>). Buffers are kept, so a step allocates nothing.
/// </summary>
public sealed class TokenSampler
{
    private readonly GenerationSettings _settings;
    private readonly TorchGenerator _generator;
    private double[] _p = [];
    private int[] _order = [];

    /// <summary>Creates a sampler for <paramref name="settings"/>, seeding its generator with
    /// <see cref="GenerationSettings.Seed"/>.</summary>
    public TokenSampler(GenerationSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        _settings = settings;
        _generator = new TorchGenerator(settings.Seed);
    }

    /// <summary>The next token for <paramref name="logits"/>.</summary>
    public int Next(ReadOnlySpan<float> logits)
    {
        if (_settings.Temperature == 0) return ArgMax(logits);
        int v = logits.Length;
        if (_p.Length != v) { _p = new double[v]; _order = new int[v]; }
        double t = _settings.Temperature, max = double.NegativeInfinity;
        foreach (float l in logits) max = Math.Max(max, l / t);
        for (int j = 0; j < v; j++) { _p[j] = logits[j] / t; _order[j] = j; }
        // Most likely first; ties by id so the order (and the draw) is deterministic.
        Array.Sort(_order, (a, b) => _p[b] != _p[a] ? _p[b].CompareTo(_p[a]) : a.CompareTo(b));
        int keep = _settings.TopK > 0 ? Math.Min(_settings.TopK, v) : v;
        // Top-k keeps every token whose logit reaches the k-th largest (HF: logits < kth value are removed).
        double kth = _p[_order[keep - 1]];
        while (keep < v && _p[_order[keep]] >= kth) keep++;
        double sum = 0;
        for (int i = 0; i < keep; i++) sum += Math.Exp(_p[_order[i]] - max);
        if (_settings.TopP < 1f)
        {
            // HF removes tokens whose cumulative probability (ascending) is ≤ 1 − top_p, always keeping the most
            // likely: equivalently, keep the shortest most-likely-first prefix whose mass reaches top_p.
            double cumulative = 0;
            int cut = keep;
            for (int i = 0; i < keep; i++)
            {
                cumulative += Math.Exp(_p[_order[i]] - max) / sum;
                if (cumulative >= _settings.TopP) { cut = i + 1; break; }
            }
            keep = cut;
            sum = 0;
            for (int i = 0; i < keep; i++) sum += Math.Exp(_p[_order[i]] - max);
        }
        double u = _generator.NextDouble() * sum, acc = 0;
        for (int i = 0; i < keep; i++)
        {
            acc += Math.Exp(_p[_order[i]] - max);
            if (u < acc) return _order[i];
        }
        return _order[keep - 1];
    }

    /// <summary>The index of the largest value (the first on ties).</summary>
    public static int ArgMax(ReadOnlySpan<float> row)
    {
        int best = 0;
        for (int j = 1; j < row.Length; j++) if (row[j] > row[best]) best = j;
        return best;
    }
}
