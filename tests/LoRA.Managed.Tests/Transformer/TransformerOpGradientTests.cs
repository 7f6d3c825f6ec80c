using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;
using LoRA.Managed.Tests.Autograd;

namespace LoRA.Managed.Tests.Transformer;

/// <summary>Finite-difference gradient checks for the transformer ops, plus their forward semantics.</summary>
public class TransformerOpGradientTests
{
    [Test]
    public void EmbeddingScatterAddsRepeatedIds()
    {
        var g = new TorchGenerator(1);
        Tensor w = GradCheck.Param(g, 5, 3);
        int[] ids = { 4, 0, 4, 2, 4, 1 };
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.Embedding(w, ids, 2, 3)), new[] { w });
        Tensor y = Functional.Embedding(w, ids, 2, 3);
        Assert.That(y.Shape, Is.EqualTo(new[] { 2, 3, 3 }));
        Assert.That(y.Data.Slice(3, 3).ToArray(), Is.EqualTo(w.Data.Slice(0, 3).ToArray()));
        Tape.Current.Clear();
    }

    [Test]
    public void EmbeddingRejectsOutOfRangeIds()
    {
        var w = new Tensor(5, 3);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Functional.Embedding(w, new[] { 1, 5 }, 2));
        Assert.That(ex!.Message, Does.Contain("id 5 at position 1"));
        Assert.Throws<ArgumentOutOfRangeException>(() => Functional.Embedding(w, new[] { -1 }, 1));
        Assert.Throws<ArgumentException>(() => Functional.Embedding(w, new[] { 1, 2, 3 }, 2));
    }

    [TestCase(1, 1), TestCase(4, 7), TestCase(3, 16)]
    public void LayerNorm(int rows, int cols)
    {
        var g = new TorchGenerator(2);
        Tensor x = GradCheck.Param(g, rows, cols), w = GradCheck.Param(g, cols), b = GradCheck.Param(g, cols);
        // cols = 1 normalises every row to 0: ∂x is then exactly 0, which the check also verifies.
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.LayerNorm(x, w, b)), new[] { x, w, b }, eps: 1e-3f,
            tol: 3e-3f);
    }

    [Test]
    public void LayerNormOverLastDimensionOfRank3MatchesTorch()
    {
        // torch: F.layer_norm(torch.tensor([[1., 2., 4.]]), (3,)) = [-1.0690, -0.2673, 1.3363] (eps 1e-5, biased
        // variance)
        var x = new Tensor(new float[] { 1f, 2f, 4f, 1f, 2f, 4f }, 2, 1, 3);
        var y = Functional.LayerNorm(x, new Tensor(new float[] { 1f, 1f, 1f }, 3), new Tensor(3));
        Assert.That(y.Shape, Is.EqualTo(new[] { 2, 1, 3 }));
        Assert.That(y[0], Is.EqualTo(-1.0690f).Within(1e-4));
        Assert.That(y[5], Is.EqualTo(1.3363f).Within(1e-4));
        Assert.Throws<ArgumentException>(() => Functional.LayerNorm(x, new Tensor(4), new Tensor(4)));
    }

    [Test]
    public void Gelu()
    {
        var g = new TorchGenerator(3);
        Tensor x = GradCheck.Param(g, 5, 9);
        for (int i = 0; i < x.Count; i++) x[i] *= 3f;
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.Gelu(x)), new[] { x }, eps: 1e-3f);
    }

    [TestCase(1, 1), TestCase(2, 4), TestCase(3, 6)]
    public void CausalSoftmax(int matrices, int t)
    {
        var g = new TorchGenerator(4);
        Tensor x = GradCheck.Param(g, matrices, t, t);
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.CausalSoftmax(x, 0.7f)), new[] { x }, eps: 1e-3f);
    }

    [Test]
    public void CausalSoftmaxGivesMaskedScoresNoGradient()
    {
        var x = new Tensor(2, 3, 3) { RequiresGrad = true };
        new TorchGenerator(5).FillUniform(x.Data, -1f, 1f);
        GradCheck.WeightedSum(Functional.CausalSoftmax(x)).Backward();
        for (int m = 0; m < 2; m++)
            for (int i = 0; i < 3; i++)
                for (int j = i + 1; j < 3; j++) Assert.That(x.Grad[(m * 3 + i) * 3 + j], Is.EqualTo(0f));
        Assert.Throws<ArgumentException>(() => Functional.CausalSoftmax(new Tensor(2, 3, 4)));
    }

    [TestCase(false, false), TestCase(true, false), TestCase(false, true), TestCase(true, true)]
    public void BatchedMatMul(bool ta, bool tb)
    {
        var g = new TorchGenerator(6);
        int batch = 3, m = 4, k = 5, n = 2;
        Tensor a = ta ? GradCheck.Param(g, batch, k, m) : GradCheck.Param(g, batch, m, k);
        Tensor b = tb ? GradCheck.Param(g, batch, n, k) : GradCheck.Param(g, batch, k, n);
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.BatchedMatMul(a, b, ta, tb)), new[] { a, b });
        // Each slice equals the 2-D matmul of the slices.
        Tensor c = Functional.BatchedMatMul(a, b, ta, tb);
        for (int s = 0; s < batch; s++)
        {
            var sa = new Tensor(a.Data.Slice(s * m * k, m * k).ToArray(), a.Shape[1], a.Shape[2]);
            var sb = new Tensor(b.Data.Slice(s * k * n, k * n).ToArray(), b.Shape[1], b.Shape[2]);
            Tensor cs = Functional.MatMul(sa, sb, ta, tb);
            Assert.That(c.Data.Slice(s * m * n, m * n).ToArray(), Is.EqualTo(cs.Data.ToArray()));
        }
        Tape.Current.Clear();
    }

    [Test]
    public void BatchedMatMulOverTwoLeadingDimensionsAndManySlicesMatchesSerial()
    {
        // 2·8 slices of 64×64×64 exceed the parallel threshold: the threaded path must equal one thread bitwise.
        var g = new TorchGenerator(7);
        var a = new Tensor(2, 8, 64, 64); var b = new Tensor(2, 8, 64, 64);
        g.FillUniform(a.Data, -1, 1); g.FillUniform(b.Data, -1, 1);
        Tensor parallel = Functional.BatchedMatMul(a, b, false, true);
        int saved = LoRA.Managed.Kernels.ComputeThreads.Max;
        LoRA.Managed.Kernels.ComputeThreads.Max = 1;
        try
        {
            Assert.That(Functional.BatchedMatMul(a, b, false, true).Data.ToArray(),
                Is.EqualTo(parallel.Data.ToArray()));
        }
        finally { LoRA.Managed.Kernels.ComputeThreads.Max = saved; }
        Assert.That(parallel.Shape, Is.EqualTo(new[] { 2, 8, 64, 64 }));
        Assert.Throws<ArgumentException>(() => Functional.BatchedMatMul(new Tensor(2, 3, 4), new Tensor(3, 4, 5)));
        Assert.Throws<ArgumentException>(() => Functional.BatchedMatMul(new Tensor(2, 3, 4), new Tensor(2, 5, 5)));
    }

    [Test]
    public void PermuteSplitsHeadsAndItsGradientRoundTrips()
    {
        var g = new TorchGenerator(8);
        Tensor x = GradCheck.Param(g, 2, 3, 2, 4); // (B, T, nh, hs)
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.Permute(x, 0, 2, 1, 3)), new[] { x });
        Tensor y = Functional.Permute(x, 0, 2, 1, 3);
        Assert.That(y.Shape, Is.EqualTo(new[] { 2, 2, 3, 4 }));
        // y[b, h, t, d] = x[b, t, h, d]
        Assert.That(y[((1 * 2 + 1) * 3 + 2) * 4 + 3], Is.EqualTo(x[((1 * 3 + 2) * 2 + 1) * 4 + 3]));
        Tensor back = Functional.Permute(y, 0, 2, 1, 3);
        Assert.That(back.Data.ToArray(), Is.EqualTo(x.Data.ToArray()));
        Tape.Current.Clear();
    }

    [Test]
    public void PermuteMovingTheLastDimension()
    {
        var g = new TorchGenerator(9);
        Tensor x = GradCheck.Param(g, 2, 3, 4);
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.Permute(x, 2, 0, 1)), new[] { x });
        Tensor y = Functional.Permute(x, 2, 0, 1); // y[k, i, j] = x[i, j, k]
        Assert.That(y[(3 * 2 + 1) * 3 + 2], Is.EqualTo(x[(1 * 3 + 2) * 4 + 3]));
        Assert.Throws<ArgumentException>(() => Functional.Permute(x, 0, 0, 1));
        Assert.Throws<ArgumentException>(() => Functional.Permute(x, 0, 1));
        Tape.Current.Clear();
    }
}
