using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Transformer;

/// <summary>The LayerNorm, GELU and causal-softmax kernels against their scalar twins, sweeping lengths.</summary>
public class TransformerKernelTests
{
    private static float[] Random(int n, ulong seed, float from = -3f, float to = 3f)
    {
        var a = new float[n];
        new TorchGenerator(seed).FillUniform(a, from, to);
        return a;
    }

    private static void Close(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double rel, double abs,
        string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), what);
        for (int i = 0; i < actual.Length; i++)
            Assert.That(actual[i], Is.EqualTo(expected[i]).Within(abs + rel * Math.Abs(expected[i])),
                $"{what}: element {i}");
    }

    [Test]
    public void GeluMatchesReferenceForEveryLength0To256()
    {
        for (int n = 0; n <= 256; n++)
        {
            float[] x = Random(n, (ulong)n + 1, -6f, 6f), dy = Random(n, (ulong)n + 500);
            float[] y = new float[n], yRef = new float[n], dx = Random(n, 7), dxRef = (float[])dx.Clone();
            GeluKernel.Forward(x, y);
            TransformerKernelsReference.GeluForward(x, yRef);
            Close(y, yRef, 1e-5, 1e-6, $"gelu forward n={n}");
            GeluKernel.Backward(x, dy, dx);
            TransformerKernelsReference.GeluBackward(x, dy, dxRef);
            Close(dx, dxRef, 1e-5, 1e-5, $"gelu backward n={n}");
        }
    }

    [Test]
    public void GeluInPlaceAndKnownValues()
    {
        // torch: F.gelu(torch.tensor([-3., -1., 0., 1., 3.]), approximate='tanh')
        float[] x = { -3f, -1f, 0f, 1f, 3f };
        float[] expected = { -0.0036373f, -0.1588080f, 0f, 0.8411920f, 2.9963627f };
        GeluKernel.Forward(x, x);
        Close(x, expected, 1e-5, 1e-6, "gelu values");
        Assert.Throws<ArgumentException>(() => GeluKernel.Forward(new float[3], new float[2]));
    }

    [TestCase(1), TestCase(3)]
    public void LayerNormMatchesReferenceForColumns0To256(int rows)
    {
        for (int cols = 0; cols <= 256; cols++)
        {
            float[] x = Random(rows * cols, (ulong)cols + 11), w = Random(cols, 12), b = Random(cols, 13),
                dy = Random(rows * cols, 14);
            float[] y = new float[x.Length], yRef = new float[x.Length];
            float[] mean = new float[rows], rstd = new float[rows], meanRef = new float[rows],
                rstdRef = new float[rows];
            LayerNormKernel.Forward(x, w, b, y, mean, rstd, rows, cols);
            TransformerKernelsReference.LayerNormForward(x, w, b, yRef, meanRef, rstdRef, rows, cols);
            Close(y, yRef, 1e-4, 1e-4, $"layernorm forward {rows}×{cols}");
            if (cols == 0) continue;
            Close(rstd, rstdRef, 1e-5, 0, "rstd");
            float[] dx = Random(x.Length, 15), dw = Random(cols, 16), db = Random(cols, 17);
            float[] dxRef = (float[])dx.Clone(), dwRef = (float[])dw.Clone(), dbRef = (float[])db.Clone();
            LayerNormKernel.Backward(x, w, mean, rstd, dy, dx, dw, db, rows, cols, new float[2 * cols]);
            TransformerKernelsReference.LayerNormBackward(x, w, meanRef, rstdRef, dy, dxRef, dwRef, dbRef, rows, cols);
            Close(dx, dxRef, 1e-3, 1e-4, $"layernorm dx {rows}×{cols}");
            Close(dw, dwRef, 1e-4, 1e-4, $"layernorm dw {rows}×{cols}");
            Close(db, dbRef, 1e-5, 1e-5, $"layernorm db {rows}×{cols}");
        }
    }

    [Test]
    public void LayerNormIsAccurateWhenTheMeanDwarfsTheSpread()
    {
        // 10⁴ + small noise: E[x²] − μ² would lose every digit of σ² in float; two passes do not.
        int cols = 65;
        float[] x = Random(cols, 21, -1f, 1f).Select(v => 10_000f + v).ToArray();
        float[] w = Enumerable.Repeat(1f, cols).ToArray(), b = new float[cols], y = new float[cols],
            yRef = new float[cols];
        float[] m = new float[1], s = new float[1], mr = new float[1], sr = new float[1];
        LayerNormKernel.Forward(x, w, b, y, m, s, 1, cols);
        TransformerKernelsReference.LayerNormForward(x, w, b, yRef, mr, sr, 1, cols);
        Close(y, yRef, 1e-3, 2e-3, "offset layernorm");
    }

    [Test]
    public void LayerNormRejectsMismatchedSpans() =>
        Assert.Throws<ArgumentException>(() => LayerNormKernel.Forward(new float[6], new float[3], new float[2],
            new float[6], new float[2], new float[2], 2, 3));

    [TestCase(1, 0.125f), TestCase(3, 1f)]
    public void CausalSoftmaxMatchesReference(int matrices, float scale)
    {
        int[] sizes = Enumerable.Range(0, 18).Concat(new[] { 63, 65, 129 }).ToArray();
        foreach (int t in sizes)
        {
            int n = matrices * t * t;
            float[] x = Random(n, (ulong)t + 31, -8f, 8f), dp = Random(n, 32);
            float[] p = new float[n], pRef = new float[n], dx = Random(n, 33), dxRef = (float[])dx.Clone();
            CausalSoftmaxKernel.Forward(x, p, matrices, t, scale);
            TransformerKernelsReference.CausalSoftmaxForward(x, pRef, matrices, t, scale);
            Close(p, pRef, 1e-5, 1e-7, $"causal softmax {matrices}×{t}×{t}");
            CausalSoftmaxKernel.Backward(p, dp, dx, matrices, t, scale);
            TransformerKernelsReference.CausalSoftmaxBackward(pRef, dp, dxRef, matrices, t, scale);
            Close(dx, dxRef, 1e-4, 1e-5, $"causal softmax backward {matrices}×{t}×{t}");
        }
    }

    [Test]
    public void CausalSoftmaxMasksTheFutureSumsToOneAndSurvivesHugeScores()
    {
        int t = 5;
        float[] x = Random(t * t, 41, -1f, 1f);
        x[0] = 1e30f;                       // a masked position (row 0 sees only column 0) and huge values
        for (int j = 0; j < t; j++) x[3 * t + j] = 5000f + j;
        Array.Fill(x, float.NaN, 1, t - 1); // masked entries of row 0 are never read
        float[] p = new float[t * t];
        CausalSoftmaxKernel.Forward(x, p, 1, t);
        for (int i = 0; i < t; i++)
        {
            double sum = 0;
            for (int j = 0; j < t; j++)
            {
                Assert.That(float.IsFinite(p[i * t + j]), Is.True, $"({i},{j})");
                if (j > i) Assert.That(p[i * t + j], Is.EqualTo(0f), $"future position ({i},{j})");
                sum += p[i * t + j];
            }
            Assert.That(sum, Is.EqualTo(1.0).Within(1e-5), $"row {i}");
        }
        Assert.That(p[3 * t + 3], Is.EqualTo(1 / (1 + Math.Exp(-1) + Math.Exp(-2) + Math.Exp(-3))).Within(1e-5));
    }

    [Test]
    public void CausalSoftmaxInPlace()
    {
        int t = 9;
        float[] x = Random(2 * t * t, 51), expected = new float[x.Length];
        TransformerKernelsReference.CausalSoftmaxForward(x, expected, 2, t, 0.5f);
        CausalSoftmaxKernel.Forward(x, x, 2, t, 0.5f);
        Close(x, expected, 1e-5, 1e-7, "in place");
    }
}
