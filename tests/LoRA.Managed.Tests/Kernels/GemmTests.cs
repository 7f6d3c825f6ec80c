using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Kernels;

/// <summary>The fast GEMM against its naive twin on awkward shapes, every transpose, alpha and beta.</summary>
public class GemmTests
{
    private static readonly int[] Sizes = { 1, 7, 17, 63, 65, 129 };

    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (int m in Sizes)
            foreach (int n in Sizes)
                foreach (int k in new[] { 1, 7, 65, 300 })
                    foreach (bool ta in new[] { false, true })
                        foreach (bool tb in new[] { false, true })
                            yield return new TestCaseData(m, n, k, ta, tb);
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesReference(int m, int n, int k, bool ta, bool tb)
    {
        var g = new TorchGenerator((ulong)(m * 1000003 + n * 1009 + k * 7 + (ta ? 1 : 0) + (tb ? 2 : 0)));
        foreach (var (alpha, beta) in new[] { (1f, 0f), (0.5f, 1f), (-2f, 0.25f) })
        {
            float[] a = Rand(g, m * k), b = Rand(g, k * n), c0 = Rand(g, m * n);
            float[] expected = (float[])c0.Clone(), actual = (float[])c0.Clone();
            int lda = ta ? m : k, ldb = tb ? k : n;
            GemmReference.Multiply(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, expected, n);
            Gemm.Multiply(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, actual, n);
            // Each output sums k products of values in [-1, 1]; float rounding grows like k·ε.
            float tol = 4e-7f * k * Math.Abs(alpha) * 4 + 1e-6f;
            for (int i = 0; i < expected.Length; i++)
                Assert.That(actual[i], Is.EqualTo(expected[i]).Within(tol),
                    $"C[{i / n},{i % n}] alpha={alpha} beta={beta}");
        }
    }

    /// <summary>The MLP's own shapes and a K spanning several KC blocks, where beta applies only to the first
    /// block.</summary>
    [TestCase(64, 784, 512), TestCase(512, 784, 64), TestCase(64, 256, 1000), TestCase(33, 70, 1000)]
    public void LargeAndMlpShapesMatchReferenceForEveryTranspose(int m, int n, int k)
    {
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
            {
                var g = new TorchGenerator((ulong)(m * 31 + n * 7 + k + (ta ? 1 : 0) + (tb ? 2 : 0)));
                float[] a = Rand(g, m * k), b = Rand(g, k * n), c0 = Rand(g, m * n);
                float[] expected = (float[])c0.Clone(), actual = (float[])c0.Clone();
                int lda = ta ? m : k, ldb = tb ? k : n;
                GemmReference.Multiply(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, -0.5f, expected, n);
                Gemm.Multiply(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, -0.5f, actual, n);
                // Sums of k products in [-1, 1]: the two summation orders differ by O(√k·ε) typically, k·ε at worst.
                float tol = 4e-7f * k + 1e-6f;
                for (int i = 0; i < expected.Length; i++)
                    if (Math.Abs(actual[i] - expected[i]) > tol)
                        Assert.Fail($"ta={ta} tb={tb}: C[{i / n},{i % n}] = {actual[i]}, reference {expected[i]}");
            }
    }

    [Test]
    public void BetaZeroIgnoresNaNInC()
    {
        float[] a = { 1, 2, 3, 4 }, b = { 1, 0, 0, 1 }, c = { float.NaN, float.NaN, float.NaN, float.NaN };
        Gemm.Multiply(false, false, 2, 2, 2, 1f, a, 2, b, 2, 0f, c, 2);
        Assert.That(c, Is.EqualTo(new float[] { 1, 2, 3, 4 }));
    }

    [Test]
    public void LeadingDimensionsLargerThanWidthAreRespected()
    {
        var g = new TorchGenerator(5);
        int m = 9, n = 33, k = 20, lda = 25, ldb = 40, ldc = 50;
        float[] a = Rand(g, m * lda), b = Rand(g, k * ldb), c1 = Rand(g, m * ldc);
        float[] c2 = (float[])c1.Clone();
        GemmReference.Multiply(false, false, m, n, k, 1f, a, lda, b, ldb, 1f, c1, ldc);
        Gemm.Multiply(false, false, m, n, k, 1f, a, lda, b, ldb, 1f, c2, ldc);
        for (int i = 0; i < c1.Length; i++) Assert.That(c2[i], Is.EqualTo(c1[i]).Within(1e-4f), $"index {i}");
    }

    [TestCase(64, 512, 784, false, true)]
    [TestCase(512, 784, 64, true, false)]
    [TestCase(64, 784, 512, false, false)]
    [TestCase(301, 157, 1000, true, true)]
    [TestCase(64, 10, 256, false, true)]
    [TestCase(10, 256, 64, true, false)]
    [TestCase(64, 256, 10, false, false)]
    [TestCase(2000, 9, 300, false, false)]
    [TestCase(64, 64, 64, false, true)]
    [TestCase(65, 63, 70, true, true)]
    public void ThreadCountDoesNotChangeTheBits(int m, int n, int k, bool ta, bool tb)
    {
        var g = new TorchGenerator(9);
        float[] a = Rand(g, m * k), b = Rand(g, n * k);
        float[] one = new float[m * n], two = new float[m * n], three = new float[m * n];
        int lda = ta ? m : k, ldb = tb ? k : n;
        int saved = ComputeThreads.Max;
        try
        {
            ComputeThreads.Max = 1;
            Gemm.Multiply(ta, tb, m, n, k, 1f, a, lda, b, ldb, 0f, one, n);
            ComputeThreads.Max = 2;
            Gemm.Multiply(ta, tb, m, n, k, 1f, a, lda, b, ldb, 0f, two, n);
            ComputeThreads.Max = 3;
            Gemm.Multiply(ta, tb, m, n, k, 1f, a, lda, b, ldb, 0f, three, n);
        }
        finally { ComputeThreads.Max = saved; }
        Assert.That(two, Is.EqualTo(one));
        Assert.That(three, Is.EqualTo(one));
    }

    [Test]
    public void ShortSpansAreRefusedWithTheirSizes()
    {
        var ex = Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, false, 4, 4, 4, 1f, new float[15], 4,
            new float[16], 4, 0f, new float[16], 4));
        Assert.That(ex!.Message, Does.Contain("A is 4×4").And.Contain("15"));
    }

    internal static float[] Rand(TorchGenerator g, int n)
    {
        var x = new float[n];
        g.FillUniform(x, -1f, 1f);
        return x;
    }
}
