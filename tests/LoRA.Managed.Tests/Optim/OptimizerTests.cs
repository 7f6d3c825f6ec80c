using LoRA.Managed.Nn;
using LoRA.Managed.Optim;

namespace LoRA.Managed.Tests.Optim;

/// <summary>Optimisers against steps computed by hand from PyTorch's documented formulas (in double).</summary>
public class OptimizerTests
{
    private static readonly double[] Grads = { 0.5, -0.25, 0.125, 2.0, -1.0 };

    private static Parameter Scalar(float value) => new(new[] { value }, 1);

    private static void Step(Optimizer opt, Parameter p, double grad)
    {
        p.EnsureGrad()[0] = (float)grad;
        opt.Step();
    }

    [Test]
    public void AdamFirstStepsByHand()
    {
        var p = Scalar(1f);
        var adam = new Adam(new[] { p }, learningRate: 0.1);
        // First step: m̂ = g, v̂ = g², so θ moves by lr·sign(g) (up to ε).
        Step(adam, p, 0.5);
        Assert.That(p[0], Is.EqualTo(0.9f).Within(1e-6f));
        // Same gradient again: m̂ = v̂^½ = 0.5 again, another −0.1.
        Step(adam, p, 0.5);
        Assert.That(p[0], Is.EqualTo(0.8f).Within(1e-6f));
    }

    [TestCase(0.0)]
    [TestCase(0.1)]
    public void AdamMatchesTheFormula(double weightDecay)
    {
        var p = Scalar(0.7f);
        var adam = new Adam(new[] { p }, learningRate: 0.01, weightDecay: weightDecay);
        double theta = 0.7, m = 0, v = 0;
        for (int t = 1; t <= Grads.Length; t++)
        {
            double g = Grads[t - 1] + weightDecay * theta;
            m = 0.9 * m + 0.1 * g;
            v = 0.999 * v + 0.001 * g * g;
            double mHat = m / (1 - Math.Pow(0.9, t)), vHat = v / (1 - Math.Pow(0.999, t));
            theta -= 0.01 * mHat / (Math.Sqrt(vHat) + 1e-8);
            Step(adam, p, Grads[t - 1]);
            Assert.That(p[0], Is.EqualTo(theta).Within(1e-6), $"step {t}");
        }
    }

    [Test]
    public void AdamWDecaysTheWeightNotTheGradient()
    {
        var p = Scalar(0.7f);
        var bias = Scalar(0.7f);
        var adamw = new AdamW(new[] { p, bias }, learningRate: 0.01, weightDecay: 0.1, noDecay: new[] { bias });
        double theta = 0.7, thetaB = 0.7, m = 0, v = 0;
        for (int t = 1; t <= Grads.Length; t++)
        {
            double g = Grads[t - 1];
            m = 0.9 * m + 0.1 * g;
            v = 0.999 * v + 0.001 * g * g;
            double update = 0.01 * (m / (1 - Math.Pow(0.9, t))) / (Math.Sqrt(v / (1 - Math.Pow(0.999, t))) + 1e-8);
            theta = theta * (1 - 0.01 * 0.1) - update;
            thetaB -= update;
            p.EnsureGrad()[0] = (float)g;
            bias.EnsureGrad()[0] = (float)g;
            adamw.Step();
            Assert.That(p[0], Is.EqualTo(theta).Within(1e-6), $"step {t}");
            Assert.That(bias[0], Is.EqualTo(thetaB).Within(1e-6), $"bias step {t}");
        }
    }

    [Test]
    public void SgdWithMomentumMatchesTheFormula()
    {
        var p = Scalar(1f);
        var sgd = new Sgd(new[] { p }, learningRate: 0.1, momentum: 0.9, weightDecay: 0.01);
        double theta = 1, buf = 0;
        for (int t = 1; t <= Grads.Length; t++)
        {
            double g = Grads[t - 1] + 0.01 * theta;
            buf = t == 1 ? g : 0.9 * buf + g;
            theta -= 0.1 * buf;
            Step(sgd, p, Grads[t - 1]);
            Assert.That(p[0], Is.EqualTo(theta).Within(1e-6), $"step {t}");
        }
    }

    [Test]
    public void FrozenOrGradlessParametersAreNotTouched()
    {
        var frozen = Scalar(1f);
        frozen.EnsureGrad()[0] = 1f;
        frozen.RequiresGrad = false;
        var noGrad = Scalar(2f);
        var adam = new Adam(new[] { frozen, noGrad });
        adam.Step();
        Assert.That(frozen[0], Is.EqualTo(1f));
        Assert.That(noGrad[0], Is.EqualTo(2f));
    }

    [Test]
    public void BadHyperparametersAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new Adam(new[] { Scalar(1f) }, learningRate: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Adam(new[] { Scalar(1f) }, beta1: 1.0));
        Assert.Throws<ArgumentException>(() => new Adam(Array.Empty<Parameter>()));
    }

    [Test]
    public void AParameterListedTwiceIsRefusedByEveryOptimizer()
    {
        var w = new Parameter(new float[6], 2, 3);
        var b = Scalar(1f);
        Func<IEnumerable<Parameter>, Optimizer>[] make =
            [p => new Adam(p), p => new AdamW(p), p => new Sgd(p, 0.1)];
        foreach (var create in make)
        {
            var e = Assert.Throws<ArgumentException>(() => create([w, b, w]))!;
            Assert.That(e.Message, Does.Contain("parameters 0 and 2").And.Contain("[2, 3]"));
            Assert.Throws<ArgumentNullException>(() => create([w, null!]));
            Assert.That(create([w, b]).Parameters, Has.Count.EqualTo(2), "distinct tensors of equal values are fine");
        }
    }

    [Test]
    public void WarmupCosineScheduleValues()
    {
        var s = LrSchedules.WarmupCosine(1.0, warmupSteps: 10, totalSteps: 110);
        Assert.That(s(0), Is.EqualTo(0.0));
        Assert.That(s(5), Is.EqualTo(0.5).Within(1e-12));
        Assert.That(s(10), Is.EqualTo(1.0).Within(1e-12));
        Assert.That(s(60), Is.EqualTo(0.5).Within(1e-12));
        Assert.That(s(35), Is.EqualTo(0.5 * (1 + Math.Cos(Math.PI * 0.25))).Within(1e-12));
        Assert.That(s(110), Is.EqualTo(0.0).Within(1e-12));
        Assert.That(LrSchedules.Constant(0.3)(1000), Is.EqualTo(0.3));
    }

    // StepAndZeroGrad reads each gradient and zeroes it in the same pass: the parameters must take exactly the bits of
    // Step() followed by ZeroGrad(), and every gradient must be zero after it. Lengths cover the 16/8-wide SIMD
    // blocks, their tails and the threaded split.
    [TestCase("adam", 1)]
    [TestCase("adam", 7)]
    [TestCase("adam", 65)]
    [TestCase("adam", 129)]
    [TestCase("adam", 70_001)]
    [TestCase("adamw", 63)]
    [TestCase("sgd", 65)]
    public void StepAndZeroGradEqualsStepThenZeroGrad(string kind, int length)
    {
        var rng = new Random(length);
        float[] init = Enumerable.Range(0, length).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        float[][] grads = Enumerable.Range(0, 3)
            .Select(_ => Enumerable.Range(0, length).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray()).ToArray();
        Parameter a = new((float[])init.Clone(), length), b = new((float[])init.Clone(), length);
        Optimizer Make(Parameter p) => kind switch
        {
            "adam" => new Adam([p], 1e-2, weightDecay: 0.1),
            "adamw" => new AdamW([p], 1e-2, weightDecay: 0.1),
            _ => new Sgd([p], 1e-2, momentum: 0.9),
        };
        Optimizer oa = Make(a), ob = Make(b);
        foreach (float[] g in grads)
        {
            g.CopyTo(a.EnsureGrad(), 0);
            oa.Step();
            oa.ZeroGrad();
            g.CopyTo(b.EnsureGrad(), 0);
            ob.StepAndZeroGrad();
            Assert.That(b.Grad.ToArray(), Is.All.EqualTo(0f));
        }
        Assert.That(b.Data.ToArray(), Is.EqualTo(a.Data.ToArray()).AsCollection);
    }
}
