using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Autograd;

/// <summary>
/// <c>permute</c> against a plain index computation, forward and backward, on head sizes that take the one-vector
/// row path (16) and the others (7, 1, 33), and on permutations that move the last dimension.
/// </summary>
public class PermuteOpTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        int[] split = [0, 2, 1, 3];
        yield return new TestCaseData(new[] { 3, 5, 4, 16 }, split);
        yield return new TestCaseData(new[] { 2, 7, 3, 7 }, split);
        yield return new TestCaseData(new[] { 2, 3, 5, 1 }, split);
        yield return new TestCaseData(new[] { 1, 9, 2, 33 }, split);
        yield return new TestCaseData(new[] { 2, 3, 4, 16 }, new[] { 3, 1, 0, 2 });
        yield return new TestCaseData(new[] { 5, 16 }, new[] { 1, 0 });
    }

    [TestCaseSource(nameof(Cases))]
    public void PermuteMovesEveryElementWhereTheIndexSays(int[] shape, int[] dims)
    {
        var g = new TorchGenerator(3);
        Tensor x = g.Rand(shape);
        x.RequiresGrad = true;
        Tensor y = Functional.Permute(x, dims);
        int rank = shape.Length;
        int[] inStride = new int[rank];
        inStride[rank - 1] = 1;
        for (int d = rank - 2; d >= 0; d--) inStride[d] = inStride[d + 1] * shape[d + 1];
        int[] outShape = dims.Select(d => shape[d]).ToArray();
        var upstream = new float[y.Count];
        g.FillUniform(upstream, -1f, 1f);
        var expectedGrad = new float[x.Count];
        var index = new int[rank];
        for (int j = 0; j < y.Count; j++)
        {
            int src = 0;
            for (int d = 0; d < rank; d++) src += index[d] * inStride[dims[d]];
            Assert.That(y.Data[j], Is.EqualTo(x.Data[src]), $"output {j}");
            expectedGrad[src] += upstream[j];
            for (int d = rank - 1; d >= 0 && ++index[d] == outShape[d]; d--) index[d] = 0;
        }
        Assert.That(y.Shape, Is.EqualTo(outShape));
        GradCheckLoss(y, upstream).Backward();
        Assert.That(x.Grad.ToArray(), Is.EqualTo(expectedGrad));
    }

    [TestCaseSource(nameof(Cases))]
    public void PermuteAddsIntoAGradientXAlreadyHas(int[] shape, int[] dims)
    {
        // x also feeds a second, later op, whose backward runs first: the permute's backward must add, not write.
        var g = new TorchGenerator(5);
        Tensor x = g.Rand(shape);
        x.RequiresGrad = true;
        Tensor y = Functional.Permute(x, dims);
        float[] up = new float[y.Count], other = new float[x.Count];
        g.FillUniform(up, -1f, 1f);
        g.FillUniform(other, -1f, 1f);
        Functional.Add(GradCheckLoss(y, up), GradCheckLoss(x, other)).Backward();
        float[] alone = PermuteGradient(shape, dims, up);
        for (int i = 0; i < x.Count; i++) Assert.That(x.Grad[i], Is.EqualTo(alone[i] + other[i]), $"element {i}");
    }

    private static float[] PermuteGradient(int[] shape, int[] dims, float[] upstream)
    {
        Tensor x = new(shape) { RequiresGrad = true };
        GradCheckLoss(Functional.Permute(x, dims), upstream).Backward();
        return x.Grad.ToArray();
    }

    // Σ y·upstream, whose gradient with respect to y is the upstream values.
    private static Tensor GradCheckLoss(Tensor y, float[] upstream) =>
        Functional.Reshape(Functional.MatMul(Functional.Reshape(y, 1, y.Count),
            new Tensor(upstream, upstream.Length, 1)), 1);

    [Test]
    public void OneThreadAndTwoMoveTheSameBits()
    {
        // 16×64×4×16: 4,096 head rows, enough for the runs to split over two threads.
        float[] Run(int threads)
        {
            using var scope = LoRA.Managed.Kernels.ComputeThreads.Use(threads);
            var g = new TorchGenerator(8);
            Tensor x = g.Rand(16, 64, 4, 16);
            x.RequiresGrad = true;
            Tensor y = Functional.Permute(x, 0, 2, 1, 3);
            var upstream = new float[y.Count];
            g.FillUniform(upstream, -1f, 1f);
            GradCheckLoss(y, upstream).Backward();
            return [.. y.Data.ToArray(), .. x.Grad.ToArray()];
        }
        Assert.That(Run(2), Is.EqualTo(Run(1)));
    }
}

