using LoRA.Managed.Lora;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Lora;

/// <summary>The blog's first example: W = torch.rand(4, 4) after manual_seed(13), and its truncated SVDs.</summary>
public class LowRankTests
{
    private static readonly float[,] BlogW =
    {
        { 0.0918f, 0.4794f, 0.8106f, 0.0151f },
        { 0.0153f, 0.6036f, 0.2318f, 0.8633f },
        { 0.9859f, 0.1975f, 0.0830f, 0.4253f },
        { 0.9149f, 0.4799f, 0.5348f, 0.2695f },
    };

    private static readonly float[,] BlogRank2 =
    {
        { 0.0374f, 0.5079f, 0.4906f, 0.3878f },
        { 0.0747f, 0.5884f, 0.5673f, 0.4529f },
        { 1.0059f, 0.2161f, 0.1760f, 0.2814f },
        { 0.8896f, 0.4589f, 0.4149f, 0.4510f },
    };

    [Test]
    public void GeneratorReproducesTheBlogsMatrix()
    {
        Tensor w = new TorchGenerator(13).Rand(4, 4);
        Assert.That(w[0], Is.EqualTo(0.09181702f).Within(1e-7f));
        Assert.That(w[1], Is.EqualTo(0.47938061f).Within(1e-7f));
        Assert.That(w[2], Is.EqualTo(0.81055129f).Within(1e-7f));
        Assert.That(w[3], Is.EqualTo(0.01510715f).Within(1e-7f));
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                Assert.That(w[i, j], Is.EqualTo(BlogW[i, j]).Within(5e-5f), $"W[{i},{j}]");
    }

    [Test]
    public void RankTwoApproximationMatchesTheBlog()
    {
        var r2 = LowRank.Approximate(new TorchGenerator(13).Rand(4, 4), 2);
        Assert.That(r2.A.Shape, Is.EqualTo(new[] { 4, 2 }));
        Assert.That(r2.B.Shape, Is.EqualTo(new[] { 2, 4 }));
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
            {
                Assert.That(r2.Approximation[i, j], Is.EqualTo(BlogRank2[i, j]).Within(5e-5f), $"W_2[{i},{j}]");
                float ab = 0;
                for (int k = 0; k < 2; k++) ab += r2.A[i, k] * r2.B[k, j];
                Assert.That(ab, Is.EqualTo(r2.Approximation[i, j]).Within(1e-6f), "A·B");
            }
    }

    [Test]
    public void FullRankReconstructsW()
    {
        Tensor w = new TorchGenerator(13).Rand(4, 4);
        var r4 = LowRank.Approximate(w, 4);
        for (int i = 0; i < 16; i++) Assert.That(r4.Approximation[i], Is.EqualTo(w[i]).Within(1e-6f));
        Assert.That(r4.FrobeniusErrors[4], Is.LessThan(1e-6));
    }

    [Test]
    public void FrobeniusErrorFollowsEckartYoung()
    {
        Tensor w = new TorchGenerator(5).Rand(6, 9);
        var svd = LowRank.Approximate(w, 3);
        double[] s = svd.S, e = svd.FrobeniusErrors;
        Assert.That(s, Is.Ordered.Descending);
        for (int k = 0; k <= s.Length; k++)
        {
            double dropped = Math.Sqrt(s.Skip(k).Sum(x => x * x));
            Assert.That(e[k], Is.EqualTo(dropped).Within(1e-9), $"rank {k}");
            if (k > 0) Assert.That(e[k], Is.LessThan(e[k - 1]), $"error must fall at rank {k}");
        }
        // The direct reconstruction at rank 3 has the error Eckart–Young predicts.
        double direct = 0;
        for (int i = 0; i < w.Count; i++) direct += Math.Pow((double)w[i] - svd.Approximation[i], 2);
        Assert.That(Math.Sqrt(direct), Is.EqualTo(e[3]).Within(1e-6));
    }

    [Test]
    public void RankOutsideRangeIsRefused()
    {
        Tensor w = new TorchGenerator(1).Rand(3, 5);
        var ex = Assert.Throws<ArgumentException>(() => LowRank.Approximate(w, 4));
        Assert.That(ex!.Message, Does.Contain("[3, 5]"));
        Assert.Throws<ArgumentException>(() => LowRank.Approximate(w, 0));
    }
}
