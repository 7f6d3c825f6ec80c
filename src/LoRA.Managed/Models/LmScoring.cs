using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Models;

/// <summary>
/// Scoring a token sequence: it is cut into consecutive, non-overlapping windows of at most N tokens; in each window
/// of n tokens, tokens 2..n are predicted from the ones before them within the window, and
/// <c>mean_nll = Σ −log p(token | prefix) / Σ (n − 1)</c> (what <c>model(ids, labels=ids).loss</c> gives per window,
/// pooled over every predicted token).
/// </summary>
/// <remarks>
/// Each window is prefilled into a key/value cache in chunks of <see cref="ChunkTokens"/> tokens (the same result as
/// one pass: each token still attends to everything before it in the window), and the head is applied to each
/// chunk's rows, so neither a whole window's activations nor its logits (n × V, 200 MB for GPT-2 at n = 1024) are
/// held at once; a <see cref="TensorArena"/> reuses one chunk's tensors for the next. Each row's
/// <c>−log p = log Σ exp(x − max) + max − x_target</c> is the training loss's (<see cref="CrossEntropyKernel"/>: rows
/// over the threads, vectorised), and the rows' values are summed in double in order.
/// </remarks>
public static class LmScoring
{
    /// <summary>
    /// Tokens per cached forward: enough rows for the GEMMs to run at speed, few enough to keep memory small (the
    /// chunk's logits, 128 × V floats: 25.7 MB for GPT-2, 77.8 MB for Qwen2.5's 151,936 tokens). 64 made
    /// SmolLM2-135M's scoring 1.2× slower: the head's 113 MB table was packed for every 64 rows (docs/07).
    /// </summary>
    public const int ChunkTokens = 128;

    /// <summary>Scores <paramref name="ids"/> with windows of <paramref name="context"/> tokens (0: the model's maximum
    /// context).</summary>
    /// <exception cref="ArgumentException">The context is negative or exceeds the model's maximum, or an id is outside
    /// the vocabulary.</exception>
    public static ScoreResult Score(CausalLm model, ReadOnlySpan<int> ids, int context = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        int max = model.Config.MaxContext;
        if (context < 0 || context > max)
            throw new ArgumentException($"Score: context {context} must be between 1 and the model's maximum {max} " +
                "(0 for the maximum).");
        if (context == 0) context = max;
        bool wasTraining = model.Training;
        model.Eval();
        try
        {
            KvCache cache = model.NewCache(Math.Min(context, Math.Max(1, ids.Length)));
            var arena = new TensorArena();
            int vocab = model.Config.VocabSize;
            var targets = new int[Math.Min(ChunkTokens, context)];
            double total = 0;
            long count = 0;
            for (int start = 0; start < ids.Length; start += context)
            {
                int n = Math.Min(context, ids.Length - start);
                if (n < 2) continue;
                ReadOnlySpan<int> window = ids.Slice(start, n);
                cache.Reset();
                for (int c0 = 0; c0 < n; c0 += ChunkTokens)
                {
                    int rows = Math.Min(ChunkTokens, n - c0);
                    using (arena.Activate())
                    using (Tape.NoGrad())
                    {
                        Tensor logits = model.Head(model.ForwardCached(window.Slice(c0, rows), cache));   // (rows, V)
                        // Row r predicts token c0 + r + 1; the window's last token predicts nothing.
                        for (int r = 0; r < rows; r++)
                            targets[r] = c0 + r + 1 < n ? window[c0 + r + 1] : CrossEntropyKernel.IgnoreIndex;
                        total += NllSum(logits.Data, targets.AsSpan(0, rows), vocab);
                    }
                }
                count += n - 1;
            }
            return new ScoreResult(count, count == 0 ? double.NaN : total / count);
        }
        finally
        {
            model.Train(wasTraining);
        }
    }

    /// <summary>
    /// Mean next-token NLL of <paramref name="batch"/> rows of <paramref name="time"/> ids against their targets
    /// (−100: not scored), each row prefilled through a fresh cache in chunks as <see cref="Score"/> does.
    /// </summary>
    /// <exception cref="ArgumentException">The spans do not hold batch × time ids, a row is longer than the model's
    /// maximum context, a target is outside the vocabulary, or every target is −100.</exception>
    internal static double NextTokenLoss(CausalLm model, ReadOnlySpan<int> ids, ReadOnlySpan<int> targets, int batch,
        int time,
        KvCache cache, TensorArena arena)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (batch < 1 || time < 1 || ids.Length != batch * time || targets.Length != ids.Length)
            throw new ArgumentException($"NextTokenLoss: {ids.Length} ids and {targets.Length} targets for batch " +
                $"{batch} × time {time}.");
        if (time > model.Config.MaxContext)
            throw new ArgumentException($"NextTokenLoss: rows of {time} tokens exceed the model's maximum context " +
                $"{model.Config.MaxContext}.");
        bool wasTraining = model.Training;
        model.Eval();
        try
        {
            int vocab = model.Config.VocabSize;
            double total = 0;
            long count = 0;
            for (int b = 0; b < batch; b++)
            {
                cache.Reset();
                for (int c0 = 0; c0 < time; c0 += ChunkTokens)
                {
                    int rows = Math.Min(ChunkTokens, time - c0);
                    int at = b * time + c0;
                    using (arena.Activate())
                    using (Tape.NoGrad())
                    {
                        Tensor logits = model.Head(model.ForwardCached(ids.Slice(at, rows), cache));   // (rows, V)
                        ReadOnlySpan<int> chunk = targets.Slice(at, rows);
                        total += NllSum(logits.Data, chunk, vocab);
                        foreach (int target in chunk)
                            if (target != CrossEntropyKernel.IgnoreIndex) count++;
                    }
                }
            }
            if (count == 0)
                throw new ArgumentException("NextTokenLoss: every target is " +
                    $"{CrossEntropyKernel.IgnoreIndex} (ignored); the mean is undefined.");
            return total / count;
        }
        finally
        {
            model.Train(wasTraining);
        }
    }

    /// <summary>
    /// <c>Σ −log softmax(rowᵣ)[targetᵣ]</c> over the rows whose target is not
    /// <see cref="CrossEntropyKernel.IgnoreIndex"/> (rows × V logits, overwritten), in double.
    /// </summary>
    /// <exception cref="ArgumentException">A target is outside the vocabulary (and is not ignored).</exception>
    internal static double NllSum(Span<float> logits, ReadOnlySpan<int> targets, int vocab)
    {
        foreach (int target in targets)
            if (target != CrossEntropyKernel.IgnoreIndex && (uint)target >= (uint)vocab)
                throw new ArgumentException($"Score: token id {target} is outside the vocabulary 0..{vocab - 1}.");
        // The training loss's kernel, without its gradient (gradPerRow 0 leaves the logits unspecified).
        return CrossEntropyKernel.NllSumInPlace(logits[..(targets.Length * vocab)], targets, vocab, gradPerRow: 0f);
    }
}
