using LoRA.Managed.Autograd;

namespace LoRA.Managed.Samples.Derivations;

/// <summary>
/// Chapter 3: the backward of y = x·Wᵀ + b. Each y[n,o] = Σᵢ x[n,i]·W[o,i] + b[o], so W[o,i] meets x[n,i] in every
/// row n of column o: ∂L/∂W[o,i] = Σₙ dY[n,o]·x[n,i], i.e. dW = dYᵀ·x; likewise dx = dY·W and db = Σₙ dY[n,:].
/// </summary>
public static class LinearDerivation
{
    private const int N = 3, In = 4, Out = 5;

    /// <summary>Checks dW, dx and db against finite differences and the library's LinearOp.</summary>
    public static string Check()
    {
        double[] x = GradCheck.Random(N * In, 1), w = GradCheck.Random(Out * In, 2), b = GradCheck.Random(Out, 3);
        double[] dy = GradCheck.Random(N * Out, 4);   // the upstream gradient: L = Σ y ⊙ dY
        var (dx, dw, db) = Backward(x, w, dy);

        double fd = Math.Max(Math.Max(
            GradCheck.MaxDiff(dw, GradCheck.Numeric(v => GradCheck.Dot(Forward(x, v, b), dy), w)),
            GradCheck.MaxDiff(dx, GradCheck.Numeric(v => GradCheck.Dot(Forward(v, w, b), dy), x))),
            GradCheck.MaxDiff(db, GradCheck.Numeric(v => GradCheck.Dot(Forward(x, w, v), dy), b)));

        var tx = GradCheck.Tensor(x, true, N, In);
        var tw = GradCheck.Tensor(w, true, Out, In);
        var tb = GradCheck.Tensor(b, true, Out);
        GradCheck.Loss(Functional.Linear(tx, tw, tb), dy).Backward();
        double lib = Math.Max(Math.Max(GradCheck.MaxDiff(dw, tw.Grad), GradCheck.MaxDiff(dx, tx.Grad)),
            GradCheck.MaxDiff(db, tb.Grad));
        return GradCheck.Verdict("linear: dW = dYᵀ·x, dx = dY·W, db = Σ dY", fd, lib);
    }

    private static double[] Forward(double[] x, double[] w, double[] b)
    {
        var y = new double[N * Out];
        for (int n = 0; n < N; n++)
            for (int o = 0; o < Out; o++)
            {
                double s = b[o];
                for (int i = 0; i < In; i++) s += x[n * In + i] * w[o * In + i];
                y[n * Out + o] = s;
            }
        return y;
    }

    /// <summary>The derived gradients, written out as sums.</summary>
    public static (double[] Dx, double[] Dw, double[] Db) Backward(double[] x, double[] w, double[] dy)
    {
        var dx = new double[N * In];
        var dw = new double[Out * In];
        var db = new double[Out];
        for (int n = 0; n < N; n++)
            for (int o = 0; o < Out; o++)
            {
                double g = dy[n * Out + o];
                db[o] += g;                                   // db = Σₙ dY[n,:]
                for (int i = 0; i < In; i++)
                {
                    dw[o * In + i] += g * x[n * In + i];      // dW = dYᵀ·x
                    dx[n * In + i] += g * w[o * In + i];      // dx = dY·W
                }
            }
        return (dx, dw, db);
    }
}
