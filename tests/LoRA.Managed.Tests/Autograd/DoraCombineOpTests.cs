using LoRA.Managed.Autograd;
using LoRA.Managed.Autograd.Ops;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Autograd;

/// <summary>DoRA's combine op against its plain twin (one scalar loop per formula, in double) on awkward widths, with
/// and without the dropout residual and the bias.</summary>
public class DoraCombineOpTests
{
    private static Tensor Rand(TorchGenerator g, float lo, float hi, params int[] shape)
    {
        var t = new Tensor(shape) { RequiresGrad = true };
        g.FillUniform(t.Data, lo, hi);
        return t;
    }

    [TestCase(1, 1, false, false)]
    [TestCase(7, 63, false, true)]
    [TestCase(3, 65, true, false)]
    [TestCase(2, 129, true, true)]
    [TestCase(5, 7, true, true)]
    public void MatchesThePlainTwin(int rows, int outF, bool residual, bool withBias)
    {
        var g = new TorchGenerator((ulong)(rows * 1000 + outF));
        Tensor z = Rand(g, -1, 1, rows, outF), u = Rand(g, -1, 1, rows, outF), m = Rand(g, 0.5f, 2, outF);
        Tensor n = Rand(g, 0.5f, 2, outF);
        n.RequiresGrad = false;
        Tensor? r = residual ? Rand(g, -1, 1, rows, outF) : null, b = withBias ? Rand(g, -1, 1, outF) : null;
        Tensor grad = Rand(g, -1, 1, rows, outF);
        const float s = 1.5f;

        Tensor y = DoraCombineOp.Apply(r, z, u, m, n, s, b);
        var loss = Weighted(y, grad);
        loss.Backward();

        for (int i = 0; i < rows; i++)
            for (int j = 0; j < outF; j++)
            {
                double gain = (double)m[j] / n[j], zi = z[i, j], ui = u[i, j];
                double want = (r is null ? gain * (zi + s * ui) : r[i, j] + (gain - 1) * zi + gain * s * ui) +
                    (b is null ? 0 : b[j]);
                Assert.That(y[i, j], Is.EqualTo(want).Within(1e-5 * (1 + Math.Abs(want))), $"y[{i},{j}]");
                double G = grad[i, j];
                Assert.That(z.Grad[i * outF + j], Is.EqualTo((gain - (r is null ? 0 : 1)) * G).Within(1e-5),
                    $"dz[{i},{j}]");
                Assert.That(u.Grad[i * outF + j], Is.EqualTo(gain * s * G).Within(1e-5), $"du[{i},{j}]");
                if (r is not null) Assert.That(r.Grad[i * outF + j], Is.EqualTo(G).Within(1e-6), $"dr[{i},{j}]");
            }
        for (int j = 0; j < outF; j++)
        {
            double dm = 0, db = 0;
            for (int i = 0; i < rows; i++)
            {
                dm += (double)grad[i, j] * (z[i, j] + s * u[i, j]) / n[j];
                db += grad[i, j];
            }
            Assert.That(m.Grad[j], Is.EqualTo(dm).Within(1e-5 * (1 + Math.Abs(dm))), $"dm[{j}]");
            if (b is not null) Assert.That(b.Grad[j], Is.EqualTo(db).Within(1e-5 * (1 + Math.Abs(db))), $"db[{j}]");
        }
        Assert.That(n.HasGrad, Is.False, "the norm is detached");
    }

    /// <summary>Σ y ⊙ G, so backward hands the op exactly G.</summary>
    private static Tensor Weighted(Tensor y, Tensor grad)
    {
        var w = new Tensor(grad.Data.ToArray(), y.Count, 1);
        return Functional.MatMul(Functional.Reshape(y, 1, y.Count), w);
    }
}
