using System.Diagnostics;
using System.Text;
using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Models;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Benchmarks.Training;

/// <summary>
/// The blog MLP's training step timed by phase inside the step (forward with the loss, backward, Adam), on batches of
/// random images taken in turn. The isolated kernels of <c>--profile</c> leave out what the phases do to each other's
/// caches; this shows it. It also counts Adam's subnormal first moments at the end: a moment whose gradient stays 0
/// decays into the subnormal range, where Adam takes its exact slow lane (<see cref="SubnormalMoments"/>).
/// </summary>
public static class StepPhases
{
    // On one fixed batch the loss goes to 0 and most moments become subnormal, which a real run does not see.
    private const int Batches = 16;

    /// <summary>Median µs of each phase and of the whole step, per thread count.</summary>
    public static string Table(int[] threadCounts, int steps = 400)
    {
        var sb = new StringBuilder("| threads | forward + loss | backward | Adam | whole step | subnormal m |\n");
        sb.AppendLine("|---:|---:|---:|---:|---:|---:|");
        foreach (int t in threadCounts)
            using (ComputeThreads.Use(t))
            {
                var gen = new TorchGenerator(7);
                Module model = Mlp.Blog(gen);
                var opt = new Adam(model.TrainableParameters(), 1e-3);
                var arena = new TensorArena();
                var xs = new Tensor[Batches];
                var ys = new int[Batches][];
                for (int k = 0; k < Batches; k++)
                {
                    xs[k] = new Tensor(64, 784);
                    gen.FillUniform(xs[k].Data, 0f, 1f);
                    ys[k] = new int[64];
                    for (int i = 0; i < 64; i++) ys[k][i] = gen.NextInt(10);
                }
                long warm = Stopwatch.GetTimestamp(); // a second first: tiered compilation recompiles hot loops
                for (int k = 0; Stopwatch.GetElapsedTime(warm).TotalSeconds < 1; k++)
                    Step(model, opt, arena, xs[k % Batches], ys[k % Batches]);
                var f = new double[steps]; var b = new double[steps]; var a = new double[steps];
                var w = new double[steps];
                for (int i = 0; i < steps; i++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    using (arena.Activate())
                    {
                        var l = Functional.CrossEntropy(model.Forward(xs[i % Batches]), ys[i % Batches]);
                        long t1 = Stopwatch.GetTimestamp();
                        l.Backward();
                        long t2 = Stopwatch.GetTimestamp();
                        opt.StepAndZeroGrad();
                        long t3 = Stopwatch.GetTimestamp();
                        f[i] = Stopwatch.GetElapsedTime(t0, t1).TotalMicroseconds;
                        b[i] = Stopwatch.GetElapsedTime(t1, t2).TotalMicroseconds;
                        a[i] = Stopwatch.GetElapsedTime(t2, t3).TotalMicroseconds;
                    }
                    w[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
                }
                long subnormal = opt.FirstMoments.Sum(m => (long)m.Count(float.IsSubnormal));
                long count = opt.FirstMoments.Sum(m => (long)m.Length);
                sb.AppendLine($"| {t} | {Median(f):F1} | {Median(b):F1} | {Median(a):F1} | {Median(w):F1} | " +
                    $"{100.0 * subnormal / count:F0} % |");
            }
        return sb.ToString();
    }

    private static void Step(Module model, Adam opt, TensorArena arena, Tensor x, int[] labels)
    {
        using (arena.Activate())
        {
            Functional.CrossEntropy(model.Forward(x), labels).Backward();
            opt.StepAndZeroGrad();
        }
    }

    internal static double Median(double[] v) { var s = (double[])v.Clone(); Array.Sort(s); return s[s.Length / 2]; }
}
