using BenchmarkDotNet.Attributes;
using LoRA.Managed.Kernels;
using LoRA.Managed.Losses;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Benchmarks.Training;

/// <summary>
/// Question: what does one training step of the blog MLP cost, in time and in managed allocation? One
/// forward + cross-entropy + backward + Adam step at batch 64 on random data. The autograd records a
/// fresh graph (tensors and gradient buffers) every step, so the allocation column is not zero; it is
/// reported as measured. Threads: 1 and the machine's count.
/// </summary>
[Config(typeof(ShortRunConfig))]
[MemoryDiagnoser]
public class TrainStepBenchmarks
{
    private const int Batch = 64;
    private Mlp _model = null!;
    private Adam _optimizer = null!;
    private readonly CrossEntropyLoss _loss = new();
    private Tensor _x = null!;
    private int[] _labels = [];

    /// <summary><see cref="ComputeThreads.Max"/> for the step.</summary>
    [Params(1, 2)]
    public int Threads { get; set; }

    /// <summary>A fresh model, optimizer and random batch.</summary>
    [GlobalSetup]
    public void Setup()
    {
        ComputeThreads.Max = Threads;
        var g = new TorchGenerator(7);
        _model = Mlp.Blog(g);
        _optimizer = new Adam(_model.Parameters(), 1e-3);
        _x = new Tensor(Batch, 784);
        g.FillUniform(_x.Data, 0f, 1f);
        _labels = new int[Batch];
        for (int i = 0; i < Batch; i++) _labels[i] = g.NextInt(10);
    }

    /// <summary>Zero gradients, forward, loss, backward, Adam step.</summary>
    [Benchmark]
    public float Step()
    {
        _optimizer.ZeroGrad();
        var loss = _loss.Forward(_model.Forward(_x), _labels);
        loss.Backward();
        _optimizer.Step();
        return loss.Item();
    }
}
