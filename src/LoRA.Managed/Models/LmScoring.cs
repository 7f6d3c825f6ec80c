using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Models;

/// <summary>
/// Scoring a token sequence: it is cut into consecutive, non-overlapping windows of at most N tokens; in each window
/// of n tokens, tokens 2..n are predicted from the ones before them within the window, and
/// <c>mean_nll = Σ −log p(token | prefix) / Σ (n − 1)</c> (what <c>model(ids, labels=ids).loss</c> gives per window,
/// pooled over every predicted token).
/// </summary>
/// <remarks>
/// Each window is one cached forward (prefill); the head is applied a few rows at a time, so the logits of a whole
/// window (n × V, 200 MB for GPT-2 at n = 1024) are never held at once. Log-probabilities use the stable
/// <c>x − max − log Σ exp(x − max)</c>, summed in double.
/// </remarks>
public static class LmScoring
{
    private const int HeadRows = 32;

    /// <summary>Scores <paramref name="ids"/> with windows of <paramref name="context"/> tokens (0: the model's maximum context).</summary>
    /// <exception cref="ArgumentException">The context is negative or exceeds the model's maximum, or an id is outside the vocabulary.</exception>
    public static ScoreResult Score(CausalLm model, ReadOnlySpan<int> ids, int context = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        int max = model.Config.MaxContext;
        if (context < 0 || context > max)
            throw new ArgumentException($"Score: context {context} must be between 1 and the model's maximum {max} (0 for the maximum).");
        if (context == 0) context = max;
        bool wasTraining = model.Training;
        model.Eval();
        try
        {
            KvCache cache = model.NewCache(Math.Min(context, Math.Max(1, ids.Length)));
            var arena = new TensorArena();
            int[] rowsShape = [HeadRows, model.Config.HiddenSize];
            double total = 0;
            long count = 0;
            for (int start = 0; start < ids.Length; start += context)
            {
                int n = Math.Min(context, ids.Length - start);
                if (n < 2) continue;
                ReadOnlySpan<int> window = ids.Slice(start, n);
                using (arena.Activate())
                using (Tape.NoGrad())
                {
                    cache.Reset();
                    Tensor hidden = model.ForwardCached(window, cache);        // (n, C)
                    for (int r0 = 0; r0 < n - 1; r0 += HeadRows)
                    {
                        int rows = Math.Min(HeadRows, n - 1 - r0);
                        if (rows != rowsShape[0]) rowsShape = [rows, model.Config.HiddenSize];
                        Tensor chunk = Tape.NewTensor(rowsShape);
                        hidden.Data.Slice(r0 * rowsShape[1], rows * rowsShape[1]).CopyTo(chunk.Data);
                        Tensor logits = model.Head(chunk);                         // (rows, V)
                        for (int r = 0; r < rows; r++)
                            total += Nll(logits.Data.Slice(r * model.Config.VocabSize, model.Config.VocabSize), window[r0 + r + 1]);
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

    /// <summary><c>−log softmax(logits)[target]</c>, stable, accumulated in double.</summary>
    internal static double Nll(ReadOnlySpan<float> logits, int target)
    {
        if ((uint)target >= (uint)logits.Length)
            throw new ArgumentException($"Score: token id {target} is outside the vocabulary 0..{logits.Length - 1}.");
        float max = TensorPrimitives.Max(logits);
        double sum = 0;
        foreach (float l in logits) sum += Math.Exp(l - (double)max);
        return Math.Log(sum) + max - logits[target];
    }
}
