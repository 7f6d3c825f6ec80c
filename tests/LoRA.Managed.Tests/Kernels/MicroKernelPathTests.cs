using System.Runtime.Intrinsics;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Kernels;

/// <summary>
/// Every micro-kernel the GEMM can pick, forced explicitly, against the naive twin: on an AVX-512 machine
/// the default path never runs the AVX2 6×16 or the scalar kernel, which most other machines use.
/// </summary>
public class MicroKernelPathTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (string kind in new[] { "Scalar", "Vector256x6x16", "Vector512x8x32" })
            foreach (int m in new[] { 1, 7, 63, 129 })
                foreach (int n in new[] { 1, 17, 65 })
                    foreach (int k in new[] { 1, 65, 300 })
                        foreach (bool ta in new[] { false, true })
                            foreach (bool tb in new[] { false, true })
                                yield return new TestCaseData(kind, m, n, k, ta, tb);
    }

    [TestCaseSource(nameof(Cases))]
    public unsafe void MatchesReference(string kindName, int m, int n, int k, bool ta, bool tb)
    {
        var kind = Enum.Parse<MicroKernelKind>(kindName); // the enum is internal, so cases carry its name
        if (kind == MicroKernelKind.Vector256x6x16) Assume.That(Vector256.IsHardwareAccelerated, "needs Vector256");
        if (kind == MicroKernelKind.Vector512x8x32) Assume.That(Vector512.IsHardwareAccelerated, "needs Vector512");
        var g = new TorchGenerator((ulong)(m * 131 + n * 17 + k));
        float[] a = GemmTests.Rand(g, m * k), b = GemmTests.Rand(g, k * n), c0 = GemmTests.Rand(g, m * n);
        int lda = ta ? m : k, ldb = tb ? k : n;
        foreach (float beta in new[] { 0f, 0.5f })
        {
            float[] expected = (float[])c0.Clone(), actual = (float[])c0.Clone();
            GemmReference.Multiply(ta, tb, m, n, k, 1.5f, a, lda, b, ldb, beta, expected, n);
            fixed (float* pa = a, pb = b, pc = actual)
                Gemm.Serial(kind, ta, tb, m, n, k, 1.5f, pa, lda, pb, ldb, beta, pc, n);
            float tol = 4e-7f * k * 1.5f * 4 + 1e-6f;
            for (int i = 0; i < expected.Length; i++)
                Assert.That(actual[i], Is.EqualTo(expected[i]).Within(tol), $"{kind} C[{i / n},{i % n}] beta {beta}");
        }
    }
}
