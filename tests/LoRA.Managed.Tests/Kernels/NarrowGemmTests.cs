using System.Runtime.Intrinsics;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Kernels;

/// <summary>
/// The direct path for products with at most 16 columns or rows (<see cref="NarrowGemm"/>) against the naive
/// twin on awkward shapes, every transpose, several alpha/beta pairs and padded leading dimensions.
/// </summary>
public class NarrowGemmTests
{
    // 9..12 rows take the one-pass 12-row tile, 13..16 two passes; 33 and 65 leave a partial 32-column block.
    private static readonly int[] Narrow = { 1, 7, 10, 12, 13, 16 };
    private static readonly int[] Wide = { 1, 7, 10, 17, 33, 63, 65, 129 };

    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (int narrow in Narrow)
            foreach (int wide in Wide)
                foreach (int k in new[] { 1, 7, 17, 65, 129, 300 })
                    foreach (bool fewColumns in new[] { true, false })
                        foreach (bool ta in new[] { false, true })
                            foreach (bool tb in new[] { false, true })
                            {
                                int m = fewColumns ? wide : narrow, n = fewColumns ? narrow : wide;
                                yield return new TestCaseData(m, n, k, ta, tb)
                                    .SetName($"M{m}_N{n}_K{k}_{(ta ? 'T' : 'N')}{(tb ? 'T' : 'N')}");
                            }
        // A short shared dimension with many rows and columns (the layer-3 input gradient, 64×10·10×256).
        foreach (int m in new[] { 17, 64, 65 })
            foreach (int n in new[] { 17, 64, 129, 250 })
                foreach (int k in new[] { 1, 4, 10, 16 })
                    foreach (bool ta in new[] { false, true })
                        foreach (bool tb in new[] { false, true })
                            yield return new TestCaseData(m, n, k, ta, tb)
                                .SetName($"M{m}_N{n}_K{k}_{(ta ? 'T' : 'N')}{(tb ? 'T' : 'N')}");
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesReference(int m, int n, int k, bool ta, bool tb)
    {
        Assume.That(Vector512.IsHardwareAccelerated, "the direct path needs Vector512");
        Assert.That(NarrowGemm.Applies(m, n, k), Is.True, "this shape should take the direct path");
        var g = new TorchGenerator((ulong)(m * 7919 + n * 104729 + k * 13 + (ta ? 1 : 0) + (tb ? 2 : 0)));
        foreach (var (alpha, beta) in new[] { (1f, 0f), (0.5f, 1f), (-2f, 0.25f) })
        {
            // Leading dimensions wider than the stored rows, to catch a stride mixed up with a width.
            int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
            float[] a = GemmTests.Rand(g, (ta ? k : m) * lda), b = GemmTests.Rand(g, (tb ? n : k) * ldb),
                c0 = GemmTests.Rand(g, m * ldc);
            float[] expected = (float[])c0.Clone(), actual = (float[])c0.Clone();
            GemmReference.Multiply(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, expected, ldc);
            Gemm.Multiply(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, actual, ldc);
            float tol = 4e-7f * k * Math.Abs(alpha) * 4 + 1e-6f;
            for (int i = 0; i < m; i++)
            {
                for (int j = 0; j < n; j++)
                    if (Math.Abs(actual[i * ldc + j] - expected[i * ldc + j]) > tol)
                        Assert.Fail($"alpha={alpha} beta={beta}: C[{i},{j}] = {actual[i * ldc + j]}, reference " +
                            $"{expected[i * ldc + j]}");
                for (int j = n; j < ldc; j++)
                    Assert.That(actual[i * ldc + j], Is.EqualTo(c0[i * ldc + j]), $"padding C[{i},{j}] was written");
            }
        }
    }

    [Test]
    public void BetaZeroIgnoresNaNInC()
    {
        var g = new TorchGenerator(1);
        float[] a = GemmTests.Rand(g, 20 * 30), b = GemmTests.Rand(g, 30 * 10),
            c = Enumerable.Repeat(float.NaN, 20 * 10).ToArray();
        Gemm.Multiply(false, false, 20, 10, 30, 1f, a, 30, b, 10, 0f, c, 10);
        Assert.That(c.Any(float.IsNaN), Is.False);
        float[] ct = Enumerable.Repeat(float.NaN, 10 * 20).ToArray();
        Gemm.Multiply(true, true, 10, 20, 30, 1f, b, 10, a, 30, 0f, ct, 20);
        Assert.That(ct.Any(float.IsNaN), Is.False);
    }

    [Test]
    public void FewRowsWithALargeATakeThePackedPath()
    {
        Assert.That(NarrowGemm.Applies(8, 4096, 1 << 14), Is.False);
        Assert.That(NarrowGemm.Applies(4096, 8, 4096), Is.EqualTo(Vector512.IsHardwareAccelerated));
    }

    [Test]
    public void AShortSharedDimensionTakesTheDirectPathOnlyBelowTheParallelThreshold()
    {
        Assert.That(NarrowGemm.Applies(64, 256, 10), Is.EqualTo(Vector512.IsHardwareAccelerated));
        Assert.That(NarrowGemm.Applies(1024, 1024, 10), Is.False, "large enough to split over threads");
        Assert.That(NarrowGemm.Applies(64, 256, 17), Is.False);
    }

    /// <summary>
    /// The direct path sums each element exactly as the packed path does (including the KC-blocking of k),
    /// so switching paths never changes a bit: a last partial batch of 8 rows gives the same model either way.
    /// </summary>
    [TestCase(8, 512, 784, false, true), TestCase(64, 10, 256, false, true), TestCase(10, 256, 64, true, false),
     TestCase(64, 256, 10, false, false), TestCase(12, 100, 600, false, true), TestCase(9, 33, 513, true, false),
     TestCase(7, 129, 300, true, true), TestCase(129, 16, 513, false, false), TestCase(3, 40, 1000, false, true)]
    public unsafe void GivesTheSameBitsAsThePackedPath(int m, int n, int k, bool ta, bool tb)
    {
        Assume.That(Vector512.IsHardwareAccelerated, "the direct path needs Vector512");
        Assert.That(NarrowGemm.Applies(m, n, k), Is.True);
        var g = new TorchGenerator((ulong)(m + n + k));
        foreach (float beta in new[] { 0f, 1f, 0.5f })
        {
            float[] a = GemmTests.Rand(g, m * k), b = GemmTests.Rand(g, k * n), direct = GemmTests.Rand(g, m * n);
            float[] packed = (float[])direct.Clone();
            int lda = ta ? m : k, ldb = tb ? k : n;
            Gemm.Multiply(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, beta, direct, n);
            fixed (float* pa = a, pb = b, pc = packed)
                Gemm.Serial(MicroKernelKind.Vector512x8x32, ta, tb, m, n, k, 0.75f, pa, lda, pb, ldb, beta, pc, n);
            Assert.That(direct, Is.EqualTo(packed), $"beta {beta}");
        }
    }
}
