using BenchmarkDotNet.Attributes;
using LoRA.Managed.Models;
using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Benchmarks.Training;

/// <summary>
/// Question: what does one training step of the blog MLP cost, in time and in managed allocation? One
/// forward + cross-entropy + backward + Adam step at batch 64 on random data, for the base model and for
/// the blog's rank-4 adapter on <c>layers.5</c>, with and without a <see cref="TensorArena"/> (which reuses
/// every activation, gradient and op record across steps). Threads: 1 and 2.
/// </summary>
[Config(typeof(ShortRunConfig))]
[MemoryDiagnoser]
public class TrainStepBenchmarks
{
    private const int Batch = 64;
    private Module _model = null!;
    private TensorArena? _arena;
    private Adam _optimizer = null!;
    private Tensor _x = null!;
    private int[] _labels = [];

    /// <summary><see cref="ComputeThreads.Max"/> for the step.</summary>
    [Params(1, 2)]
    public int Threads { get; set; }

    /// <summary>Train the blog's adapter (base frozen) instead of the whole MLP.</summary>
    [Params(false, true)]
    public bool Lora { get; set; }

    /// <summary>Run each step inside a <see cref="TensorArena"/>, as the trainer does.</summary>
    [Params(false, true)]
    public bool Arena { get; set; }

    /// <summary>A fresh model, optimizer and random batch.</summary>
    [GlobalSetup]
    public void Setup()
    {
        ComputeThreads.Max = Threads;
        var g = new TorchGenerator(7);
        _model = Mlp.Blog(g);
        if (Lora)
            _model = LoraModel.GetPeftModel(_model,
                new LoraConfig { Rank = 4, Alpha = 1, Init = LoraInit.Svd, Scaling = LoraScaling.Alpha,
                    TargetModules = ["layers.5"] }, g);
        _optimizer = new Adam(_model.TrainableParameters(), 1e-3);
        _arena = Arena ? new TensorArena() : null;
        _x = new Tensor(Batch, 784);
        g.FillUniform(_x.Data, 0f, 1f);
        _labels = new int[Batch];
        for (int i = 0; i < Batch; i++) _labels[i] = g.NextInt(10);
    }

    /// <summary>Zero gradients, forward, loss, backward, Adam step.</summary>
    [Benchmark]
    public float Step()
    {
        using var scope = _arena is null ? default : _arena.Activate();
        _optimizer.ZeroGrad();
        var loss = Functional.CrossEntropy(_model.Forward(_x), _labels);
        loss.Backward();
        _optimizer.Step();
        return loss.Item();
    }
}
