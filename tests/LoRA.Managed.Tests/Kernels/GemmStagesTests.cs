using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Kernels;

/// <summary>Every teaching stage of the GEMM (docs/02) against the naive twin on awkward shapes.</summary>
public class GemmStagesTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (GemmStages.Stage stage in Enum.GetValues<GemmStages.Stage>())
            foreach (var (m, n, k) in new[] { (1, 1, 1), (7, 63, 65), (65, 129, 7), (129, 65, 300), (63, 7, 129) })
                yield return new TestCaseData(stage, m, n, k);
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesReference(GemmStages.Stage stage, int m, int n, int k)
    {
        Assume.That(GemmStages.IsSupported(stage), $"{stage} is not accelerated on this machine");
        var g = new TorchGenerator((ulong)(m * 31 + n * 17 + k));
        float[] a = GemmTests.Rand(g, m * k), b = GemmTests.Rand(g, k * n);
        float[] expected = new float[m * n], actual = GemmTests.Rand(g, m * n);
        GemmReference.Multiply(false, false, m, n, k, 1f, a, k, b, n, 0f, expected, n);
        GemmStages.Multiply(stage, m, n, k, a, b, actual);
        float tol = 4e-7f * k * 4 + 1e-6f;
        for (int i = 0; i < expected.Length; i++)
            if (Math.Abs(actual[i] - expected[i]) > tol)
                Assert.Fail($"{stage}: C[{i / n},{i % n}] = {actual[i]}, reference {expected[i]}");
    }

    [Test]
    public void ShortSpansAreRefused()
    {
        Assert.Throws<ArgumentException>(() => GemmStages.Multiply(GemmStages.Stage.IkjVector, 4, 4, 4, new float[15],
            new float[16], new float[16]));
    }
}
