using System.Diagnostics;
using LoRA.Managed.Data;
using LoRA.Managed.Models;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Cli.Bench;

/// <summary>One kernel call of the blog's training step and its median time.</summary>
/// <param name="Phase">forward, backward or optimizer.</param>
/// <param name="Op">What the call computes, with its shape.</param>
/// <param name="Microseconds">Median time of one call, in µs.</param>
public sealed record ProfiledOp(string Phase, string Op, double Microseconds);

/// <summary>
/// Where the time of one <see cref="Mlp.Blog"/> training step goes: every kernel the step calls
/// (<see cref="Gemm"/> per shape, bias, ReLU, cross-entropy, gradient zeroing, Adam), called directly on
/// buffers of the step's shapes and timed one by one. Their sum set beside the whole step measured by
/// <see cref="QuickBench.MeasureTrainStep"/> shows what the framework around the kernels (tape, arena,
/// module calls) costs.
/// </summary>
public static class StepProfile
{
    private const int B = QuickBench.Batch;

    /// <summary>Times each kernel of the step with <see cref="ComputeThreads.Max"/> = <paramref name="threads"/>
    /// (restored after).</summary>
    /// <param name="threads">Threads the kernels may use.</param>
    /// <param name="reps">Timed calls per kernel (the median is kept), after 1.5 s of untimed passes.</param>
    public static IReadOnlyList<ProfiledOp> Run(int threads, int reps = 200)
    {
        using (ComputeThreads.Use(threads))
        {
            // Untimed passes for 1.5 s first: kernels with loops start at tier 0 and are recompiled only after
            // ~30 calls and 100 ms without new compilations; timing them before would measure unoptimised code.
            var warm = Stopwatch.StartNew();
            do Measure(10); while (warm.Elapsed.TotalSeconds < 1.5);
            return Measure(reps);
        }
    }

    private static IReadOnlyList<ProfiledOp> Measure(int reps)
    {
        var g = new TorchGenerator(3);
        float[] R(int n) { var a = new float[n]; g.FillUniform(a, -1f, 1f); return a; }
        int[] f = { 784, 512, 256, 10 };
        float[] x = R(B * 784), flat = new float[B * 784];
        float[][] w = { R(512 * 784), R(256 * 512), R(10 * 256) }, bias = { R(512), R(256), R(10) };
        float[][] dw = { R(512 * 784), R(256 * 512), R(10 * 256) }, db = { R(512), R(256), R(10) };
        float[][] y = { R(B * 512), R(B * 256), R(B * 10) }, h = { R(B * 512), R(B * 256) };
        float[][] dy = { R(B * 512), R(B * 256), R(B * 10) }, dh = { R(B * 512), R(B * 256) };
        int[] labels = new int[B];
        for (int i = 0; i < B; i++) labels[i] = g.NextInt(10);
        float[] dLogits = new float[B * 10];
        const int P = 535_818;
        float[] p = R(P), grad = R(P), m = new float[P], v = new float[P];

        var ops = new List<ProfiledOp>();
        void Time(string phase, string name, Action run) =>
            ops.Add(new ProfiledOp(phase, name, MedianMicroseconds(run, reps)));

        var bytes = new byte[B * 784];
        for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)g.NextInt(256);
        var images = new MnistDataset(bytes, new byte[B], 784);
        Time("data", "batch fill 64×784 bytes→floats (in cache)", () =>
        {
            for (int i = 0; i < B; i++) images.CopyImage(i, flat.AsSpan(i * 784, 784));
        });
        for (int l = 0; l < 3; l++)
        {
            int inF = f[l], outF = f[l + 1], L = l;
            float[] input = l == 0 ? x : h[l - 1];
            Time("forward", $"GEMM y = x·Wᵀ {B}×{inF}×{outF} NT",
                () => Gemm.Multiply(false, true, B, outF, inF, 1f, input, inF, w[L], inF, 0f, y[L], outF));
            Time("forward", $"bias add {B}×{outF}", () => RowOps.AddBias(y[L], bias[L], B, outF));
            if (l < 2) Time("forward", $"ReLU {B}×{outF}", () => Relu.Forward(y[L], h[L]));
        }
        Time("forward", $"cross-entropy fwd+bwd {B}×10",
            () => CrossEntropyKernel.ForwardBackward(y[2], labels, 10, dLogits, 1f));
        // ReLU's backward adds into a zeroed buffer; the GEMMs' outputs and cross-entropy's are written, not added.
        Time("backward", "zero ReLU input grads (tape)", () => { Array.Clear(dy[0]); Array.Clear(dy[1]); });
        for (int l = 2; l >= 0; l--)
        {
            int inF = f[l], outF = f[l + 1], L = l;
            float[] input = l == 0 ? x : h[l - 1];
            if (l > 0)
            {
                Time("backward", $"GEMM dx = dy·W {B}×{outF}×{inF} NN",
                    () => Gemm.Multiply(false, false, B, inF, outF, 1f, dy[L], outF, w[L], inF, 0f, dh[L - 1], inF));
            }
            Time("backward", $"GEMM dW = dyᵀ·x {outF}×{B}×{inF} TN",
                () => Gemm.Multiply(true, false, outF, inF, B, 1f, dy[L], outF, input, inF, 0f, dw[L], inF));
            Time("backward", $"bias grad (column sums) {B}×{outF}",
                () => RowOps.AccumulateColumnSums(dy[L], B, outF, db[L]));
            if (l > 0)
                Time("backward", $"ReLU backward {B}×{inF}", () => Relu.Backward(h[L - 1], dh[L - 1], dy[L - 1]));
        }
        Time("optimizer", $"Adam update ({P:N0} parameters)",
            () => AdamUpdate.Step(p, grad, m, v, 1e-3f, 0.1f, 0.999f, 0.001f, 0.5f, 1e-8f, 0f, 1f));
        return ops;
    }

    /// <summary>A table of the ops, their sum (and the GEMMs', Adam's and the zeroing's parts of it), and the whole
    /// step for comparison.</summary>
    public static string ToTable(IReadOnlyList<ProfiledOp> ops, double stepMs)
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine("| phase | op | µs | share of step |");
        sb.AppendLine("|---|---|---:|---:|");
        double stepUs = stepMs * 1000;
        foreach (var o in ops)
            sb.AppendLine($"| {o.Phase} | {o.Op} | {o.Microseconds:F1} | {o.Microseconds / stepUs:P0} |");
        double sum = ops.Sum(o => o.Microseconds);
        sb.AppendLine($"| | sum of kernels | {sum:F1} | {sum / stepUs:P0} |");
        // The shares the docs quote (docs/02, docs/07), so none is added up by hand.
        foreach (var (label, prefix) in new[] { ("GEMMs", "GEMM"), ("Adam", "Adam"), ("zeroing gradients", "zero"),
            ("data", "batch") })
        {
            double part = ops.Where(o => o.Op.StartsWith(prefix, StringComparison.Ordinal)).Sum(o => o.Microseconds);
            sb.AppendLine($"| | of which {label} | {part:F1} | {part / stepUs:P0} |");
        }
        sb.AppendLine($"| | whole step (median) | {stepUs:F1} | 100% |");
        return sb.ToString();
    }

    /// <summary>The median µs of <paramref name="reps"/> calls of <paramref name="run"/>, after a tenth as many
    /// (at least 3) untimed.</summary>
    public static double MedianMicroseconds(Action run, int reps)
    {
        for (int i = 0; i < Math.Max(3, reps / 10); i++) run();
        var t = new double[reps];
        for (int i = 0; i < reps; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            run();
            t[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
        }
        Array.Sort(t);
        return t[reps / 2];
    }
}
