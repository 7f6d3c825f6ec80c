using System.Diagnostics;
using System.Text;
using LoRA.Managed.Autograd;
using LoRA.Managed.Data;
using LoRA.Managed.Kernels;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;
using LoRA.Managed.Training;

namespace LoRA.Managed.Benchmarks.Training;

/// <summary>
/// The blog MLP's training step (batch 64 from a 48,200-image set through the data loader, Adam 1e-3) with Adam after
/// backward against Adam inside backward (<see cref="OptimizerInBackward"/>): two twins from the same seed step in
/// turn, each step timed, so both see the same machine; their weights are compared bit for bit at the end.
/// </summary>
public static class InBackwardStepTiming
{
    /// <summary>Per thread count: min and median µs per step of each way, and whether the weights agree.</summary>
    public static string Table(int[] threadCounts, int steps = 1500)
    {
        var g = new TorchGenerator(1);
        const int images = 48_200;
        var pixels = new byte[images * 784];
        var labels = new byte[images];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)g.NextInt(256);
        for (int i = 0; i < labels.Length; i++) labels[i] = (byte)g.NextInt(8);
        var train = new MnistDataset(pixels, labels, 784);
        var sb = new StringBuilder();
        sb.AppendLine("| threads | Adam | min µs/step | 10th percentile | 25th | median | same weights |");
        sb.AppendLine("|---:|---|---:|---:|---:|---:|---|");
        foreach (int t in threadCounts)
        {
            using var scope = ComputeThreads.Use(t);
            var plain = new Twin(train, inBackward: false);
            var early = new Twin(train, inBackward: true);
            var times = new double[4][];
            for (int k = 0; k < 4; k++) times[k] = new double[steps];
            for (int i = 0; i < 300; i++) { plain.Step(); early.Step(); }
            for (int i = 0; i < steps; i++)
            {
                // Alternate which goes first, so neither always runs on the other's leftover cache.
                if ((i & 1) == 0) { times[0][i] = plain.Step(); times[1][i] = early.Step(); }
                else { times[1][i] = early.Step(); times[0][i] = plain.Step(); }
                times[2][i] = plain.AfterBackward;
                times[3][i] = early.AfterBackward;
            }
            bool same = plain.Weights().SequenceEqual(early.Weights());
            for (int k = 0; k < 4; k++)
            {
                Array.Sort(times[k]);
                string name = k switch
                {
                    0 => "after backward", 1 => "in backward", 2 => "after: its optimiser part", _ => "in: its rest",
                };
                sb.AppendLine($"| {t} | {name} | {times[k][0]:F0} | " +
                    $"{times[k][steps / 10]:F0} | {times[k][steps / 4]:F0} | {times[k][steps / 2]:F0} | {same} |");
            }
        }
        return sb.ToString();
    }

    private sealed class Twin
    {
        private readonly Models.Mlp _model;
        private readonly Adam _adam;
        private readonly OptimizerInBackward? _early;
        private readonly DataLoader _loader;
        private readonly TensorArena _arena = new();
        private IEnumerator<Batch> _batches;

        public Twin(MnistDataset train, bool inBackward)
        {
            var gen = new TorchGenerator(0);
            _model = Models.Mlp.Blog(gen);
            _adam = new Adam(_model.TrainableParameters(), 1e-3);
            _early = inBackward ? OptimizerInBackward.For(_adam, _model) : null;
            _loader = new DataLoader(train, 64, shuffle: true, generator: gen);
            _batches = _loader.GetEnumerator();
        }

        public double Step()
        {
            long t0 = Stopwatch.GetTimestamp();
            if (!_batches.MoveNext())
            {
                _batches = _loader.GetEnumerator();
                _batches.MoveNext();
            }
            Batch b = _batches.Current;
            using (_arena.Activate())
            {
                _early?.Begin();
                Functional.CrossEntropy(_model.Forward(b.Images), b.Labels).Backward();
            }
            long t1 = Stopwatch.GetTimestamp();
            if (_early is not null) _early.Finish();
            else _adam.StepAndZeroGrad();
            AfterBackward = Stopwatch.GetElapsedTime(t1).TotalMicroseconds;
            return Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
        }

        /// <summary>The last step's time after backward (the optimiser, or what backward left of it).</summary>
        public double AfterBackward { get; private set; }

        public float[] Weights() => _model.Parameters().SelectMany(p => p.Data.ToArray()).ToArray();
    }
}
