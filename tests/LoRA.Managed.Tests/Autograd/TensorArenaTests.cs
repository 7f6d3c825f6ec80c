using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Autograd;

public class TensorArenaTests
{
    private static (Mlp Model, Adam Opt, Tensor X, int[] Y) Setup()
    {
        var g = new TorchGenerator(5);
        var model = new Mlp(g, 20, 16, 8, 3);
        var x = g.Rand(7, 20);
        return (model, new Adam(model.Parameters(), 1e-2), x, new[] { 0, 1, 2, 0, 1, 2, 0 });
    }

    private static float Step(Mlp model, Adam opt, Tensor x, int[] y, TensorArena? arena)
    {
        using var scope = arena is null ? default : arena.Activate();
        opt.ZeroGrad();
        Tensor loss = Functional.CrossEntropy(model.Forward(x), y);
        float value = loss.Item();
        loss.Backward();
        opt.Step();
        return value;
    }

    [Test]
    public void StepsWithAnArenaGiveTheSameBitsAsWithout()
    {
        var (m1, o1, x, y) = Setup();
        var (m2, o2, _, _) = Setup();
        var arena = new TensorArena();
        for (int i = 0; i < 5; i++)
            Assert.That(Step(m2, o2, x, y, arena), Is.EqualTo(Step(m1, o1, x, y, null)), $"step {i}");
        foreach (var ((_, a), (_, b)) in m1.NamedParameters().Zip(m2.NamedParameters()))
            Assert.That(b.Data.ToArray(), Is.EqualTo(a.Data.ToArray()));
    }

    [Test]
    public void SteadyStateTrainingStepAllocatesNothing()
    {
        var (model, opt, x, y) = Setup();
        var arena = new TensorArena();
        int saved = ComputeThreads.Max;
        ComputeThreads.Max = 1; // the threaded GEMM path uses the thread pool, measured separately by the benchmarks
        try
        {
            for (int i = 0; i < 3; i++) Step(model, opt, x, y, arena);
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 10; i++) Step(model, opt, x, y, arena);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.That(allocated, Is.Zero);
        }
        finally { ComputeThreads.Max = saved; }
    }

    [Test]
    public void ANewBatchShapeGetsItsOwnBuffersAndTheOldOnesStay()
    {
        var (model, opt, x, y) = Setup();
        var arena = new TensorArena();
        Step(model, opt, x, y, arena);
        int count = arena.TensorCount;
        var small = new TorchGenerator(1).Rand(2, 20);
        Step(model, opt, small, new[] { 1, 2 }, arena);
        Assert.That(arena.TensorCount, Is.GreaterThan(count));
        int both = arena.TensorCount;
        Step(model, opt, x, y, arena);
        Step(model, opt, small, new[] { 1, 2 }, arena);
        Assert.That(arena.TensorCount, Is.EqualTo(both));
    }

    [Test]
    public void NestedActivationIsRefused()
    {
        var arena = new TensorArena();
        using (arena.Activate())
            Assert.Throws<InvalidOperationException>(() => new TensorArena().Activate());
    }
}

public class TensorArenaRegressionTests
{
    // Found in review: a step that recorded ops without backward left them on the tape; the next activation
    // handed out the same op records again, so each sat on the tape twice and its gradient counted twice.
    [Test]
    public void AStepWithoutBackwardDoesNotCorruptTheNextStepsGradient()
    {
        var w = new LoRA.Managed.Nn.Parameter(new float[] { 0.5f, -1f, 2f, 0.25f, 1f, -0.5f }, 2, 3);
        var x = new TorchGenerator(3).Rand(4, 3);
        var ones = new Tensor(new float[] { 1f, 1f, 1f, 1f, 1f, 1f, 1f, 1f }, 8, 1);
        Tensor Loss() => Functional.MatMul(Functional.Reshape(Functional.Linear(x, w), 1, 8), ones);

        Tape.Current.Clear();
        Loss().Backward();
        float[] expected = w.Grad.ToArray();

        var arena = new TensorArena();
        w.ZeroGrad();
        using (arena.Activate()) Loss();                  // forgot backward (e.g. an evaluation without NoGrad)
        using (arena.Activate()) Loss().Backward();
        Assert.That(w.Grad.ToArray(), Is.EqualTo(expected));
    }

    [Test]
    public void DisposingANoGradScopeTwiceKeepsGradEnabled()
    {
        var scope = Tape.NoGrad();
        scope.Dispose();
        scope.Dispose();
        Assert.That(Tape.IsGradEnabled, Is.True);
        using (Tape.NoGrad()) Assert.That(Tape.IsGradEnabled, Is.False);
        Assert.That(Tape.IsGradEnabled, Is.True);
    }
}
