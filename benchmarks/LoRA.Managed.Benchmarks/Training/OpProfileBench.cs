using System.Text;
using LoRA.Managed.Autograd;
using LoRA.Managed.Data;
using LoRA.Managed.Kernels;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;
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
    public static string Tables(int[] threadCounts, int steps = 300, bool llama = false)
    {
        var sb = new StringBuilder();
        (string, Func<Action<OpProfiler>>, int)[] models = llama
            ? [("SmolLM2-135M-shaped Llama (random weights), LoRA r 8 on q/k/v, batch 1×256, AdamW", Llama, 6)]
            : [("blog MLP, batch 64, Adam", () => Mlp(lora: false), steps),
                ("blog MLP + LoRA rank 4 on layers.5", () => Mlp(lora: true), steps),
                ("lm-demo GPT, batch 32×64, AdamW", Gpt, steps)];
        foreach (int t in threadCounts)
            foreach (var (name, create, count) in models)
            {
                using var threads = ComputeThreads.Use(t);
                Action<OpProfiler> step = create();
                var warm = System.Diagnostics.Stopwatch.StartNew();
                var idle = OpProfiler.Start();
                do step(idle); while (warm.Elapsed.TotalSeconds < 1);
                idle.Stop();
                OpProfiler p = OpProfiler.Start();
                for (int i = 0; i < count; i++) step(p);
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

    /// <summary>
    /// The user's case at the scale of SmolLM2-135M: its 30 layers of hidden 576, 9 query and 3 key/value heads of 64,
    /// SwiGLU 1,536 and the tied 49,152-token head, with random weights (normal, σ 0.02, as
    /// <c>initializer_range</c>), LoRA r 8, α 16 on q/k/v, a context of 256, the head fused into the loss as
    /// <c>lm-finetune</c> trains.
    /// </summary>
    private static Action<OpProfiler> Llama()
    {
        const int time = 256;
        var config = new HfConfig
        {
            ModelType = "llama", VocabSize = 49152, HiddenSize = 576, Layers = 30, Heads = 9, KvHeads = 3,
            HeadDim = 64, IntermediateSize = 1536, MaxPositions = 8192, MaxContext = 8192, NormEps = 1e-5f,
            RopeTheta = 100000, TieWordEmbeddings = true,
        };
        var model = new LlamaForCausalLm(config);
        var gen = new TorchGenerator(7);
        foreach (var (_, p) in model.NamedParameters())
        {
            if (p.Shape.Length == 1) p.Data.Fill(1f);   // RMSNorm weights
            else gen.FillNormal(p.Data, 0f, 0.02f);
        }
        var peft = LoraModel.GetPeftModel(model, new LoraConfig { Rank = 8, Alpha = 16,
            TargetModules = ["q_proj", "k_proj", "v_proj"] }, gen);
        model.Train();
        var opt = new AdamW(peft.TrainableParameters(), 1e-4, weightDecay: 0);
        var arena = new TensorArena();
        int[] ids = new int[time + 1];
        for (int i = 0; i < ids.Length; i++) ids[i] = gen.NextInt(config.VocabSize);
        return p =>
        {
            p.BeginStep();
            using var scope = arena.Activate();
            model.Loss(ids.AsSpan(0, time), ids.AsSpan(1, time), 1, time).Backward();
            opt.StepAndZeroGrad();
            p.Mark("optimizer (AdamW)");
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
