using System.Diagnostics;
using System.Globalization;
using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Benchmarks;

/// <summary>
/// Our side of benchmarks/pytorch/hf_lm.py on a Hugging Face folder (a GPT-2-small-sized random model made by
/// <c>hf_lm.py make</c>, or a SmolLM2-135M-shaped Llama by <c>make-smol</c>): <c>score</c> (8 windows of 256 tokens),
/// <c>finetune</c> (LoRA r = 8 on c_attn, or on q/k/v for a Llama, context 256,
/// batch 1, AdamW, 6 timed steps after one warm-up) and <c>generate</c> (greedy, 16-token prompt, 64 new tokens, KV
/// cache). Same shapes and step counts as the peer; one JSON line with tokens_per_second and peak_rss_mb (VmHWM).
/// Run one mode per process so the peak RSS is that mode's; HF_BENCH_TRACE=1 adds memory lines on stderr.
/// </summary>
public static class HfLmBench
{
    private const int Context = 256, ScoreWindows = 8, FinetuneSteps = 6, GenPrompt = 16, GenNew = 64;

    /// <summary><c>--hf MODE DIR [--threads N]</c>.</summary>
    public static string Run(string mode, string folder, int threads)
    {
        using var _ = ComputeThreads.Use(threads);
        CausalLm model = HfModel.Load(folder);
        if (Environment.GetEnvironmentVariable("HF_BENCH_TRACE") == "1")
        {
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"after load: peak {PeakRssMb():F0} MB, GC heap {GC.GetTotalMemory(false) / 1e6:F0} MB"));
        }
        string body = mode switch
        {
            "score" => Score(model),
            "finetune" => Finetune(model),
            "generate" => Generate(model),
            _ => throw new ArgumentException($"--hf: unknown mode '{mode}' (score, finetune, generate)."),
        };
        if (Environment.GetEnvironmentVariable("HF_BENCH_TRACE") == "1")
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"end: GC heap {GC.GetTotalMemory(false) / 1e6:F0} MB, committed " +
                $"{GC.GetGCMemoryInfo().TotalCommittedBytes / 1e6:F0} MB, " +
                $"allocated {GC.GetTotalAllocatedBytes() / 1e6:F0} MB"));
        return "{" + body + FormattableString.Invariant(
            $", \"engine\": \"LoRA.Managed\", \"threads\": {threads}, \"peak_rss_mb\": {PeakRssMb():F1}") + "}";
    }

    private static int[] Ids(int n, ulong seed, int vocab)
    {
        var g = new TorchGenerator(seed);
        var ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = (int)(g.NextDouble() * vocab);
        return ids;
    }

    private static string Score(CausalLm model)
    {
        int[] ids = Ids(Context * ScoreWindows, 1, model.VocabSize);
        model.Score(ids.AsSpan(0, Context), Context);   // warm-up
        var clock = Stopwatch.StartNew();
        ScoreResult r = model.Score(ids, Context);
        double s = clock.Elapsed.TotalSeconds;
        return string.Create(CultureInfo.InvariantCulture,
            $"\"mode\": \"score\", \"tokens\": {r.Tokens}, \"mean_nll\": {r.MeanNll:R}, " +
            $"\"tokens_per_second\": {ids.Length / s:F1}");
    }

    private static string Finetune(CausalLm model)
    {
        // PEFT's defaults: GPT-2's fused c_attn (q, k and v), a Llama's q/k/v projections
        string[] targets = model is Gpt2LmHeadModel ? ["c_attn"] : ["q_proj", "k_proj", "v_proj"];
        var peft = LoraModel.GetPeftModel(model, new LoraConfig { Rank = 8, Alpha = 16, TargetModules = targets },
            new TorchGenerator(3));
        model.Train();
        var opt = new AdamW(peft.TrainableParameters(), 1e-4, weightDecay: 0);
        int[] ids = Ids(Context * (FinetuneSteps + 1) + 1, 1, model.VocabSize);
        var arena = new TensorArena();
        double last = 0;
        double Step(int i)
        {
            ReadOnlySpan<int> w = ids.AsSpan(i * Context, Context + 1);
            using (arena.Activate())
            {
                opt.ZeroGrad();
                // the head fused into the loss, as LmFinetuning trains
                Tensor loss = model.Loss(w[..^1], w[1..], 1, Context);
                float value = loss.Item();
                loss.Backward();
                opt.Step();
                return value;
            }
        }
        long m0 = GC.GetTotalAllocatedBytes(true);
        Step(0);
        if (Environment.GetEnvironmentVariable("HF_BENCH_TRACE") == "1")
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"first step allocated {(GC.GetTotalAllocatedBytes(true) - m0) / 1e6:F0} MB, " +
                $"peak {PeakRssMb():F0} MB"));
        var clock = Stopwatch.StartNew();
        for (int i = 1; i <= FinetuneSteps; i++) last = Step(i);
        double s = clock.Elapsed.TotalSeconds;
        return string.Create(CultureInfo.InvariantCulture,
            $"\"mode\": \"finetune\", \"steps\": {FinetuneSteps}, \"context\": {Context}, \"last_loss\": {last:R}, " +
            $"\"trainable_params\": {peft.TrainableParameterCount}, " +
            $"\"tokens_per_second\": {FinetuneSteps * Context / s:F1}");
    }

    private static string Generate(CausalLm model)
    {
        int[] prompt = Ids(GenPrompt, 1, model.VocabSize);
        var settings = new GenerationSettings { MaxNewTokens = GenNew, EosTokenIds = [] };
        model.Generate(prompt, settings);   // warm-up
        var clock = Stopwatch.StartNew();
        int[] output = model.Generate(prompt, settings);
        double s = clock.Elapsed.TotalSeconds;
        return string.Create(CultureInfo.InvariantCulture,
            $"\"mode\": \"generate\", \"new_ids\": [{string.Join(", ", output)}], " +
            $"\"tokens_per_second\": {output.Length / s:F1}");
    }

    private static double PeakRssMb()
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1],
                    CultureInfo.InvariantCulture) / 1024;
        return double.NaN;
    }
}
