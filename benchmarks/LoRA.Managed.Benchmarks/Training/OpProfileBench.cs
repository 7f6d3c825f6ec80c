using System.Text;
using LoRA.Managed.Autograd;
using LoRA.Managed.Data;
using LoRA.Managed.Kernels;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Benchmarks.Training;

/// <summary>
/// The step breakdown issue 20 asks for, op by op inside the real step (<see cref="OpProfiler"/>): the blog MLP's
/// step with its batch filled from bytes, its rank-4 LoRA step, and <c>lm-demo</c>'s GPT step (batch 32×64, AdamW),
/// each after 1 s of warm-up, 300 steps profiled, at each thread count.
/// </summary>
public static class OpProfileBench
{
    /// <summary>One table per model and thread count.</summary>
    public static string Tables(int[] threadCounts, int steps = 300)
    {
        var sb = new StringBuilder();
        foreach (int t in threadCounts)
            foreach (var (name, create) in new (string, Func<Action<OpProfiler>>)[]
            {
                ("blog MLP, batch 64, Adam", () => Mlp(lora: false)),
                ("blog MLP + LoRA rank 4 on layers.5", () => Mlp(lora: true)),
                ("lm-demo GPT, batch 32×64, AdamW", Gpt),
            })
            {
                using var threads = ComputeThreads.Use(t);
                Action<OpProfiler> step = create();
                var warm = System.Diagnostics.Stopwatch.StartNew();
                var idle = OpProfiler.Start();
                while (warm.Elapsed.TotalSeconds < 1) step(idle);
                idle.Stop();
                OpProfiler p = OpProfiler.Start();
                for (int i = 0; i < steps; i++) step(p);
                p.Stop();
                sb.AppendLine($"{name}, {t} thread(s):");
                sb.AppendLine(p.Table());
            }
        return sb.ToString();
    }

    private static Action<OpProfiler> Mlp(bool lora)
    {
        var gen = new TorchGenerator(7);
        Module model = Models.Mlp.Blog(gen);
        if (lora)
            model = LoraModel.GetPeftModel(model,
                new LoraConfig { Rank = 4, Alpha = 1, Init = LoraInit.Svd, Scaling = LoraScaling.Alpha,
                    TargetModules = ["layers.5"] }, gen);
        var opt = new Adam(model.TrainableParameters(), lora ? 5e-3 : 1e-3);
        var arena = new TensorArena();
        const int batch = 64, images = 4096;
        var bytes = new byte[images * 784];
        var labels = new byte[images];
        for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)gen.NextInt(256);
        for (int i = 0; i < labels.Length; i++) labels[i] = (byte)gen.NextInt(10);
        var loader = new DataLoader(new MnistDataset(bytes, labels, 784), batch, shuffle: true, generator: gen);
        IEnumerator<Batch> batches = loader.GetEnumerator();
        return p =>
        {
            p.BeginStep();
            if (!batches.MoveNext())
            {
                batches = loader.GetEnumerator();
                batches.MoveNext();
            }
            Batch b = batches.Current;
            p.Mark("batch fill (DataLoader)");
            using var scope = arena.Activate();
            Functional.CrossEntropy(model.Forward(b.Images), b.Labels).Backward();
            opt.StepAndZeroGrad();
            p.Mark("optimizer (Adam)");
        };
    }

    private static Action<OpProfiler> Gpt()
    {
        const int batch = 32, time = 64;
        var gen = new TorchGenerator(7);
        var model = new GptModel(new GptConfig { VocabSize = 96, BlockSize = time, Layers = 2, Heads = 4,
            Embed = 64 }, gen);
        var opt = new AdamW(model.TrainableParameters(), 3e-3, weightDecay: 0.1);
        var arena = new TensorArena();
        int[] ids = new int[batch * time], targets = new int[batch * time];
        for (int i = 0; i < ids.Length; i++) { ids[i] = gen.NextInt(96); targets[i] = gen.NextInt(96); }
        return p =>
        {
            p.BeginStep();
            using var scope = arena.Activate();
            Functional.CrossEntropy(model.Forward(ids, batch, time), targets).Backward();
            opt.StepAndZeroGrad();
            p.Mark("optimizer (AdamW)");
        };
    }
}
