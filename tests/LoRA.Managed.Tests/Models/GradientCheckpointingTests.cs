using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;
using LoRA.Managed.Tests.Autograd;

namespace LoRA.Managed.Tests.Models;

/// <summary>
/// <see cref="CausalLm.GradientCheckpointing"/> (<see cref="Functional.Checkpoint"/>): the loss and every adapter
/// gradient are those of the plain step, on float and quantised bases, GPT-2 and Llama, with LoRA on the blocks and on
/// the token table; a checkpointed step allocates nothing once warm; and the op alone passes a finite-difference check.
/// </summary>
[NonParallelizable]
public class GradientCheckpointingTests
{
    private static PeftModel Adapted(string name, BaseDType d, out CausalLm model, float dropout = 0f)
    {
        model = HfModel.Load(HfFixtures.Folder(name), d);
        var config = new LoraConfig
        {
            Rank = 4, Alpha = 8, Dropout = dropout,
            TargetModules = name == "gpt2-tiny" ? ["c_attn", "c_fc", "wte"]
                : ["q_proj", "v_proj", "down_proj", "embed_tokens"],
        };
        var peft = LoraModel.GetPeftModel(model, config, new TorchGenerator(5));
        // LoRA's B (A for embeddings) starts at zero: make every factor nonzero so every gradient path carries signal.
        var g = new TorchGenerator(17);
        foreach (var p in peft.TrainableParameters()) g.FillNormal(p.Data, 0f, 0.1f);
        return peft;
    }

    [Test]
    public void CheckpointedStepHasThePlainStepsLossAndGradients(
        [Values("gpt2-tiny", "llama-gqa-tied")] string name, [Values(BaseDType.F32, BaseDType.Nf4)] BaseDType d)
    {
        var plain = Adapted(name, d, out CausalLm a);
        var checkpointed = Adapted(name, d, out CausalLm b);
        b.GradientCheckpointing = true;
        int[] ids = HfFixtures.Ints(HfFixtures.Expected(name).GetProperty("ids"));
        int n = ids.Length - 1;
        Tensor la = a.Loss(ids.AsSpan(0, n), ids.AsSpan(1), 1, n);
        float lossA = la.Item();
        int plainOps = Tape.Current.Count;
        la.Backward();
        Tensor lb = b.Loss(ids.AsSpan(0, n), ids.AsSpan(1), 1, n);
        Assert.That(lb.Item(), Is.EqualTo(lossA), "the same forward");
        Assert.That(Tape.Current.Count, Is.LessThan(plainOps / 3), "one record per block, not the block's ops");
        lb.Backward();
        var grads = plain.NamedParameters().Where(p => p.Value.RequiresGrad).ToDictionary(p => p.Key, p => p.Value);
        int compared = 0;
        foreach (var (key, p) in checkpointed.NamedParameters().Where(p => p.Value.RequiresGrad))
        {
            Assert.That(p.HasGrad, key);
            float[] want = grads[key].Grad.ToArray(), got = p.Grad.ToArray();
            for (int i = 0; i < got.Length; i++)
                Assert.That(got[i], Is.EqualTo(want[i]).Within(1e-6f + 1e-5f * Math.Abs(want[i])), $"{key}[{i}]");
            compared++;
        }
        Assert.That(compared, Is.GreaterThan(6));
    }

    /// <summary>With LoRA dropout on, the recomputation draws the forward's masks again (the generators' states are
    /// replayed, as <c>torch.utils.checkpoint</c>'s <c>preserve_rng_state</c>), so two training steps give the plain
    /// steps' losses and gradients and leave the generators where the plain steps leave them.</summary>
    [Test]
    public void WithDropoutTheRecomputationDrawsTheSameMasks([Values("gpt2-tiny", "llama-gqa-tied")] string name)
    {
        var plain = Adapted(name, BaseDType.F32, out CausalLm a, dropout: 0.3f);
        var checkpointed = Adapted(name, BaseDType.F32, out CausalLm b, dropout: 0.3f);
        b.GradientCheckpointing = true;
        plain.Train();
        checkpointed.Train();
        int[] ids = HfFixtures.Ints(HfFixtures.Expected(name).GetProperty("ids"));
        int n = ids.Length - 1;
        for (int step = 0; step < 2; step++)
        {
            foreach (var p in plain.TrainableParameters().Concat(checkpointed.TrainableParameters())) p.ZeroGrad();
            Tensor la = a.Loss(ids.AsSpan(0, n), ids.AsSpan(1), 1, n);
            float lossA = la.Item();
            la.Backward();
            Tensor lb = b.Loss(ids.AsSpan(0, n), ids.AsSpan(1), 1, n);
            Assert.That(lb.Item(), Is.EqualTo(lossA), $"step {step}: the same forward, masks included");
            lb.Backward();
            var grads = plain.NamedParameters().Where(p => p.Value.RequiresGrad)
                .ToDictionary(p => p.Key, p => p.Value.Grad.ToArray());
            foreach (var (key, p) in checkpointed.NamedParameters().Where(p => p.Value.RequiresGrad))
            {
                float[] want = grads[key], got = p.Grad.ToArray();
                for (int i = 0; i < got.Length; i++)
                    Assert.That(got[i], Is.EqualTo(want[i]).Within(1e-6f + 1e-5f * Math.Abs(want[i])),
                        $"step {step}: {key}[{i}]");
            }
            var after = a.Generators().Select(g => g.GetState().Mt).ToList();
            var afterCheckpointed = b.Generators().Select(g => g.GetState().Mt).ToList();
            Assert.That(afterCheckpointed, Has.Count.EqualTo(after.Count).And.Count.GreaterThan(0));
            for (int i = 0; i < after.Count; i++)
                Assert.That(afterCheckpointed[i], Is.EqualTo(after[i]), $"step {step}: generator {i} moved on alike");
        }
    }

    [Test]
    public void ACheckpointedStepAllocatesNothingOnceWarm([Values("gpt2-tiny", "llama-gqa-tied")] string name,
        [Values(0f, 0.1f)] float dropout)
    {
        var peft = Adapted(name, BaseDType.Nf4, out CausalLm model, dropout);
        model.GradientCheckpointing = true;
        peft.Train();
        int[] ids = HfFixtures.Ints(HfFixtures.Expected(name).GetProperty("ids"));
        var opt = new AdamW(peft.TrainableParameters(), 1e-2, weightDecay: 0);
        var arena = new TensorArena();
        int saved = ComputeThreads.Max;
        ComputeThreads.Max = 1;
        try
        {
            Assert.That(SteadyState.AllocatedBytes(Step, 4), Is.Zero, "bytes per steady-state step");
        }
        finally { ComputeThreads.Max = saved; }

        void Step()
        {
            using var scope = arena.Activate();
            opt.ZeroGrad();
            int n = ids.Length - 1;
            Tensor loss = model.Loss(ids.AsSpan(0, n), ids.AsSpan(1), 1, n);
            loss.Backward();
            opt.Step();
        }
    }

    [Test]
    public void AFrozenModelIsNotCheckpointed([Values("gpt2-tiny", "llama-gqa-tied")] string name)
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder(name));
        foreach (var p in model.Parameters()) p.RequiresGrad = false;
        model.GradientCheckpointing = true;
        int[] ids = HfFixtures.Ints(HfFixtures.Expected(name).GetProperty("ids"));
        int n = ids.Length - 1;
        Tape.Current.Clear();
        Tensor loss = model.Loss(ids.AsSpan(0, n), ids.AsSpan(1), 1, n);
        Assert.That(loss.RequiresGrad, Is.False, "as PyTorch: nothing to train, no graph");
        Assert.That(Tape.Current.Count, Is.Zero, "no block recorded for recomputation");
        Assert.Throws<InvalidOperationException>(() => loss.Backward());
    }

    [Test]
    public void TheOpPassesTheFiniteDifferenceCheck()
    {
        var g = new TorchGenerator(3);
        Tensor x = GradCheck.Param(g, 5, 7), w = GradCheck.Param(g, 7, 7), v = GradCheck.Param(g, 7, 3);
        Func<Tensor, Tensor> block = h =>
            Functional.Gelu(Functional.MatMul(Functional.Gelu(Functional.MatMul(h, w)), v));
        GradCheck.Check(() => GradCheck.WeightedSum(Functional.Checkpoint(block, x)), [x, w, v]);
        // Under NoGrad it is the block itself.
        using (Tape.NoGrad())
            Assert.That(Functional.Checkpoint(block, x).Data.ToArray(), Is.EqualTo(block(x).Data.ToArray()));
    }
}
