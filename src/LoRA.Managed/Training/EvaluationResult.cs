namespace LoRA.Managed.Training;

/// <summary>Accuracy and confusion matrix of a classifier on a dataset.</summary>
public sealed class EvaluationResult
{
    /// <summary>Wraps a confusion matrix whose row is the true class and column the predicted class.</summary>
    public EvaluationResult(int[,] confusion)
    {
        ArgumentNullException.ThrowIfNull(confusion);
        if (confusion.GetLength(0) != confusion.GetLength(1))
            throw new ArgumentException("EvaluationResult: the confusion matrix must be square, got " +
                $"{confusion.GetLength(0)}×{confusion.GetLength(1)}.");
        Confusion = confusion;
        for (int t = 0; t < Classes; t++)
            for (int p = 0; p < Classes; p++)
            {
                Count += confusion[t, p];
                if (t == p) Correct += confusion[t, p];
            }
    }

    /// <summary>Number of classes (the logits' width).</summary>
    public int Classes => Confusion.GetLength(0);

    /// <summary><c>Confusion[true, predicted]</c>: how many samples of each true class got each prediction.</summary>
    public int[,] Confusion { get; }

    /// <summary>Samples evaluated.</summary>
    public int Count { get; }

    /// <summary>Samples whose arg-max prediction equals the label.</summary>
    public int Correct { get; }

    /// <summary><see cref="Correct"/> / <see cref="Count"/> (0 for an empty set).</summary>
    public double Accuracy => Count == 0 ? 0 : (double)Correct / Count;

    /// <summary>The confusion matrix as rows (true class) of counts (predicted class), for JSON.</summary>
    public int[][] ConfusionRows()
    {
        var rows = new int[Classes][];
        for (int t = 0; t < Classes; t++)
        {
            rows[t] = new int[Classes];
            for (int p = 0; p < Classes; p++) rows[t][p] = Confusion[t, p];
        }
        return rows;
    }
}
