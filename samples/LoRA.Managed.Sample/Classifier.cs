using LoRA.Managed.Autograd;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Sample;

/// <summary>Training and prediction for any classifier module (the base MLP or the same MLP with an adapter).</summary>
internal static class Classifier
{
    /// <summary>Full-batch Adam steps on cross-entropy; returns the last loss.</summary>
    public static float Train(Module model, IEnumerable<Parameter> parameters, Tensor x, int[] y, int steps,
        double learningRate)
    {
        var adam = new Adam(parameters, learningRate);
        float loss = float.NaN;
        for (int step = 0; step < steps; step++)
        {
            adam.ZeroGrad();
            Tensor l = Functional.CrossEntropy(model.Forward(x), y);
            loss = l.Data[0];
            l.Backward();
            adam.Step();
        }
        return loss;
    }

    /// <summary>The most likely class of each row of <paramref name="x"/> (no tape is recorded).</summary>
    public static int[] Predict(Module model, Tensor x)
    {
        using var noGrad = Tape.NoGrad();
        Tensor logits = model.Forward(x);
        int rows = logits.Shape[0], classes = logits.Shape[1];
        var best = new int[rows];
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> row = logits.Data.Slice(r * classes, classes);
            for (int c = 1; c < classes; c++) if (row[c] > row[best[r]]) best[r] = c;
        }
        return best;
    }

    /// <summary>The fraction of rows predicted right.</summary>
    public static double Accuracy(Module model, Tensor x, int[] y)
    {
        int[] predicted = Predict(model, x);
        return predicted.Zip(y).Count(p => p.First == p.Second) / (double)y.Length;
    }
}
