using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Lora;

/// <summary>Small helpers shared by the LoRA tests.</summary>
internal static class LoraTestHelpers
{
    /// <summary>A tensor of uniform values in [-1, 1).</summary>
    public static Tensor Random(TorchGenerator g, params int[] shape)
    {
        var t = new Tensor(shape);
        g.FillUniform(t.Data, -1f, 1f);
        return t;
    }

    /// <summary>Σ y ⊙ r as a differentiable scalar: reshape y to a row and multiply by r as a column.</summary>
    public static Tensor WeightedSum(Tensor y, Tensor r) =>
        Functional.MatMul(Functional.Reshape(y, 1, y.Count), Functional.Reshape(r, r.Count, 1));

    /// <summary>(W + s·B·A) computed naively in double, (out, in).</summary>
    public static double[,] Materialise(Tensor w, Tensor a, Tensor b, double s)
    {
        int o = w.Shape[0], n = w.Shape[1], r = a.Shape[0];
        var m = new double[o, n];
        for (int i = 0; i < o; i++)
            for (int j = 0; j < n; j++)
            {
                double d = 0;
                for (int k = 0; k < r; k++) d += (double)b[i, k] * a[k, j];
                m[i, j] = w[i, j] + s * d;
            }
        return m;
    }

    /// <summary>Max |a − b| over two equally sized tensors.</summary>
    public static float MaxAbsDiff(Tensor a, Tensor b)
    {
        float m = 0;
        for (int i = 0; i < a.Count; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }
}
