using LoRA.Managed.Autograd;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Autograd;

/// <summary>
/// <see cref="Tensor.ZeroGrad"/> only marks a gradient, and the next backward's first write into a weight's gradient
/// overwrites it (a GEMM with β = 0). Whatever the buffer held before, every reader must see exactly what an eager
/// clear followed by accumulation gives, and accumulation without zeroing must still add.
/// </summary>
public class LazyZeroGradTests
{
    [Test]
    public void ZeroedGradientReadsAsZerosWhateverTheBufferHeld()
    {
        var t = new Parameter(3, 5);
        t.EnsureGrad().AsSpan().Fill(7f);
        t.ZeroGrad();
        Assert.That(t.HasGrad, Is.True);
        Assert.That(t.Grad.ToArray(), Is.All.EqualTo(0f));
        t.EnsureGrad()[0] = 2f;
        Assert.That(t.Grad[0], Is.EqualTo(2f), "after the lazy clear the buffer is an ordinary gradient again");
    }

    // Shapes that take each GEMM path for the weight gradient: narrow (few rows or columns), short depth, packed.
    [TestCase(1, 7, 5)]
    [TestCase(7, 63, 10)]
    [TestCase(65, 33, 129)]
    [TestCase(64, 784, 40)]
    public void OverwrittenWeightGradientEqualsEagerZeroing(int n, int inF, int outF)
    {
        foreach (bool inOut in new[] { false, true })
        {
            var g = new TorchGenerator((ulong)(n * 1000 + inF + outF));
            Tensor x = g.Rand(n, inF);
            var w = new Parameter(inOut ? new[] { inF, outF } : new[] { outF, inF });
            g.FillUniform(w.Data, -1f, 1f);
            var b = new Parameter(outF);
            g.FillUniform(b.Data, -1f, 1f);
            int[] labels = Enumerable.Range(0, n).Select(i => i % outF).ToArray();
            void Backward() => Functional.CrossEntropy(Functional.Linear(x, w, b, inOut), labels).Backward();

            Backward();
            float[] eager = w.Grad.ToArray(), eagerBias = b.Grad.ToArray();

            // NaN garbage in the buffers: an overwrite that read C, or a reader that missed the lazy clear, shows.
            w.Grad.Fill(float.NaN);
            b.Grad.Fill(float.NaN);
            w.ZeroGrad();
            b.ZeroGrad();
            Backward();
            Assert.That(w.Grad.ToArray(), Is.EqualTo(eager), $"weight gradient {n}×{inF}→{outF}, inOut {inOut}");
            Assert.That(b.Grad.ToArray(), Is.EqualTo(eagerBias), "bias gradient");

            Backward(); // no ZeroGrad: backward adds, as PyTorch's does
            float[] twice = w.Grad.ToArray();
            for (int i = 0; i < eager.Length; i++) Assert.That(twice[i], Is.EqualTo(eager[i] + eager[i]).Within(1e-6f));
        }
    }

    [Test]
    public void AWeightUsedTwiceGetsBothContributionsAfterZeroing()
    {
        // The first use's backward overwrites, the second adds: the order the tape runs them in must not lose one.
        var g = new TorchGenerator(5);
        Tensor x = g.Rand(4, 6);
        var w = new Parameter(6, 6);
        g.FillUniform(w.Data, -1f, 1f);
        void Backward() =>
            Functional.CrossEntropy(Functional.Linear(Functional.Relu(Functional.Linear(x, w)), w), [0, 1, 2, 3])
                .Backward();
        Backward();
        float[] reference = w.Grad.ToArray();
        w.Grad.Fill(float.NaN);
        w.ZeroGrad();
        Backward();
        Assert.That(w.Grad.ToArray(), Is.EqualTo(reference));
    }

    [Test]
    public void TrainingWithLazyZeroingMatchesEagerZeroingBitForBit()
    {
        // Adam's StepAndZeroGrad (lazy) against Step then an explicit clear of every gradient's memory (eager).
        foreach (bool lora in new[] { false, true })
        {
            float[] Run(bool eager)
            {
                var gen = new TorchGenerator(11);
                Module model = Mlp.Blog(gen);
                if (lora)
                    model = LoraModel.GetPeftModel(model,
                        new LoraConfig { Rank = 4, Alpha = 8, TargetModules = ["layers.3", "layers.5"] }, gen);
                var opt = new Adam(model.TrainableParameters(), 1e-3);
                Tensor x = gen.Rand(9, 784);
                int[] labels = [0, 1, 2, 3, 4, 5, 6, 7, 8];
                for (int step = 0; step < 4; step++)
                {
                    Functional.CrossEntropy(model.Forward(x), labels).Backward();
                    if (eager)
                    {
                        opt.Step();
                        foreach (Parameter p in model.TrainableParameters()) p.Grad.Clear();
                    }
                    else opt.StepAndZeroGrad();
                }
                return model.TrainableParameters().SelectMany(p => p.Data.ToArray()).ToArray();
            }
            Assert.That(Run(eager: false), Is.EqualTo(Run(eager: true)), lora ? "LoRA" : "MLP");
        }
    }
}
