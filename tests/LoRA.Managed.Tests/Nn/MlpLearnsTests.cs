using LoRA.Managed.Models;
using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Nn;

/// <summary>End-to-end: the engine trains a small MLP on a synthetic separable problem, reproducibly.</summary>
public class MlpLearnsTests
{
    // Four Gaussian blobs in 8 dimensions, one per class, centred on ±5 along different axes
    // (pairwise centre distance 10 in unit-variance noise: the Bayes error is below 10⁻⁶).
    private static (Tensor X, int[] Y) Blobs(int n, ulong seed)
    {
        var g = new TorchGenerator(seed);
        var x = new Tensor(n, 8);
        var y = new int[n];
        for (int i = 0; i < n; i++)
        {
            int c = i % 4;
            y[i] = c;
            for (int j = 0; j < 8; j++) x[i, j] = (float)g.NextNormal();
            x[i, c] += c % 2 == 0 ? 5f : -5f;
            x[i, c + 4] += 5f;
        }
        return (x, y);
    }

    private static Mlp Train(ulong seed, int threads)
    {
        int saved = ComputeThreads.Max;
        ComputeThreads.Max = threads;
        try
        {
            var g = new TorchGenerator(seed);
            var model = new Mlp(g, 8, 64, 32, 4);
            var opt = new Adam(model.Parameters(), 1e-2);
            var (x, y) = Blobs(512, 100);
            int batch = 64;
            var xb = new Tensor(batch, 8);
            var yb = new int[batch];
            var order = Enumerable.Range(0, 512).ToArray();
            for (int epoch = 0; epoch < 10; epoch++)
            {
                g.Shuffle<int>(order);
                for (int start = 0; start < 512; start += batch)
                {
                    for (int r = 0; r < batch; r++)
                    {
                        x.Data.Slice(order[start + r] * 8, 8).CopyTo(xb.Data.Slice(r * 8, 8));
                        yb[r] = y[order[start + r]];
                    }
                    opt.ZeroGrad();
                    Functional.CrossEntropy(model.Forward(xb), yb).Backward();
                    opt.Step();
                }
            }
            return model;
        }
        finally { ComputeThreads.Max = saved; }
    }

    private static double Accuracy(Mlp model, Tensor x, int[] y)
    {
        using var _ = Tape.NoGrad();
        var logits = model.Forward(x);
        int correct = 0;
        for (int i = 0; i < y.Length; i++)
        {
            int best = 0;
            for (int c = 1; c < 4; c++) if (logits[i, c] > logits[i, best]) best = c;
            if (best == y[i]) correct++;
        }
        return (double)correct / y.Length;
    }

    [Test]
    public void LearnsSeparableBlobsTo99Percent()
    {
        var model = Train(seed: 7, threads: ComputeThreads.Max);
        var (xt, yt) = Blobs(1000, 200);
        Assert.That(Accuracy(model, xt, yt), Is.GreaterThanOrEqualTo(0.99));
    }

    [Test]
    public void SameSeedAndThreadsGiveBitwiseIdenticalWeights()
    {
        var a = Train(seed: 3, threads: 2);
        var b = Train(seed: 3, threads: 2);
        var c = Train(seed: 4, threads: 2);
        foreach (var ((_, pa), (_, pb)) in a.NamedParameters().Zip(b.NamedParameters()))
            Assert.That(pb.Data.ToArray(), Is.EqualTo(pa.Data.ToArray()));
        Assert.That(c.Parameters().First().Data.ToArray(), Is.Not.EqualTo(a.Parameters().First().Data.ToArray()));
    }
}
