using LoRA.Managed.Models;
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
            Assert.That(SteadyState.AllocatedBytes(() => Step(model, opt, x, y, arena), 10), Is.Zero);
        }
        finally { ComputeThreads.Max = saved; }
    }

    // A GPT step exercises the transformer ops (embedding, layer norm, permute, batched matmul, causal softmax,
    // GELU, dropout). B·nh = 8 slices of 16×16×8 keep the batched matmul serial; the two-thread variant below
    // uses a longer window so its slices are spread over the compute pool.
    private static (GptModel Model, AdamW Opt, int[] Ids, int[] Targets, int Batch, int Time) SetupGpt(int time = 16,
        int batch = 2)
    {
        var g = new TorchGenerator(11);
        var config = new GptConfig { VocabSize = 13, BlockSize = 64, Layers = 2, Heads = 4, Embed = 32,
            Dropout = 0.1f };
        var model = new GptModel(config, g);
        var ids = new int[batch * time];
        var targets = new int[batch * time];
        for (int i = 0; i < ids.Length; i++) { ids[i] = g.NextInt(13); targets[i] = g.NextInt(13); }
        return (model, new AdamW(model.Parameters(), 3e-3), ids, targets, batch, time);
    }

    private static float GptStep(GptModel model, AdamW opt, int[] ids, int[] targets, int batch, int time,
        TensorArena? arena)
    {
        using var scope = arena is null ? default : arena.Activate();
        opt.ZeroGrad();
        Tensor loss = Functional.CrossEntropy(model.Forward(ids, batch, time), targets);
        float value = loss.Item();
        loss.Backward();
        opt.Step();
        return value;
    }

    [Test]
    public void GptStepsWithAnArenaGiveTheSameBitsAsWithout()
    {
        var (m1, o1, ids, targets, b, t) = SetupGpt();
        var (m2, o2, _, _, _, _) = SetupGpt();
        var arena = new TensorArena();
        for (int i = 0; i < 5; i++)
            Assert.That(GptStep(m2, o2, ids, targets, b, t, arena),
                Is.EqualTo(GptStep(m1, o1, ids, targets, b, t, null)), $"step {i}");
        foreach (var ((name, a), (_, p)) in m1.NamedParameters().Zip(m2.NamedParameters()))
            Assert.That(p.Data.ToArray(), Is.EqualTo(a.Data.ToArray()), name);
    }

    /// <summary>The last case has 1,024 tokens, so its weight gradients (32×32 over the tokens) are split by depth
    /// (<see cref="DepthSplit"/>), whose slots must be reused.</summary>
    [TestCase(1, 16, 2)]
    [TestCase(2, 64, 2)]
    [TestCase(2, 64, 16)]
    public void SteadyStateGptTrainingStepAllocatesNothing(int threads, int time, int batch)
    {
        if (batch * time >= 1024) Assert.That(DepthSplit.Applies(32, 32, batch * time, threads), Is.True);
        var (model, opt, ids, targets, b, t) = SetupGpt(time, batch);
        var arena = new TensorArena();
        int saved = ComputeThreads.Max;
        ComputeThreads.Max = threads;
        try
        {
            long allocated = SteadyState.AllocatedBytes(() => GptStep(model, opt, ids, targets, b, t, arena), 10);
            Assert.That(allocated, Is.Zero, $"bytes allocated by steady-state GPT steps on {threads} thread(s)");
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
