using LoRA.Managed.Autograd;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Models;

/// <summary>
/// Cached inference inside an arena runs each block in one of two arenas that take turns (KvCache.BlockScratch): the
/// outputs must be exactly those of a run without any arena, chunk after chunk, and the outer arena must hold only
/// what lies outside the blocks.
/// </summary>
public class InferenceMemoryTests
{
    [TestCase("gpt2-tiny")]
    [TestCase("llama-gqa-tied")]
    [TestCase("qwen2-bias-bf16")]
    public void BlockArenasGiveTheSameHiddenStatesAsFreshTensors(string name)
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder(name));
        model.Eval();
        var g = new TorchGenerator(11);
        int[] ids = Enumerable.Range(0, 21).Select(_ => (int)(g.NextDouble() * model.VocabSize)).ToArray();
        KvCache cache = null!;
        float[] Run(TensorArena? arena)
        {
            cache = model.NewCache(ids.Length);
            var rows = new List<float>();
            foreach (var (start, n) in new[] { (0, 8), (8, 8), (16, 5) })
            {
                using var scope = arena is null ? default : arena.Activate();
                using var _ = Tape.NoGrad();
                rows.AddRange(model.Head(model.ForwardCached(ids.AsSpan(start, n), cache)).Data.ToArray());
            }
            return rows.ToArray();
        }
        float[] fresh = Run(null);
        var arena = new TensorArena();
        Assert.That(Run(arena), Is.EqualTo(fresh), "first pass through the arenas");
        Assert.That(Run(arena), Is.EqualTo(fresh), "second pass, every tensor reused");
        // Without the block arenas the outer one would also hold every block's tensors: more than either block arena.
        Assert.That(cache.BlockScratchTensorCount, Is.GreaterThan(0));
        Assert.That(arena.TensorCount, Is.LessThan(cache.BlockScratchTensorCount),
            "the outer arena holds the embedding, final norm and head only");
    }

    [Test]
    public void NestedArenasAreRefusedWhileRecording()
    {
        var arena = new TensorArena();
        Assert.Throws<InvalidOperationException>(() => arena.EnterNested());
    }
}

/// <summary>A Hugging Face model's fused training loss and its chunked validation loss against the plain
/// path.</summary>
public class HfLossPathTests
{
    [TestCase("gpt2-tiny")]
    [TestCase("llama-gqa-tied")]
    [TestCase("llama3-rope-sharded")]
    public void LossAndNextTokenLossMatchCrossEntropyOfTheLogits(string name)
    {
        CausalLm model = HfModel.Load(HfFixtures.Folder(name));
        var g = new TorchGenerator(12);
        int batch = 2, time = 9;
        int[] ids = Enumerable.Range(0, batch * time).Select(_ => (int)(g.NextDouble() * model.VocabSize)).ToArray();
        int[] targets = ids.Select((id, i) => i % 4 == 1 ? -100 : (id * 7 + 3) % model.VocabSize).ToArray();
        float plain;
        using (Tape.NoGrad()) plain = Functional.CrossEntropy(model.Forward(ids, batch, time), targets).Item();
        Assert.That(model.Loss(ids, targets, batch, time).Item(), Is.EqualTo(plain).Within(1e-5f * plain));
        Tape.Current.Clear();
        bool training = model.Training;
        Assert.That(model.NextTokenLoss(ids, targets, batch, time), Is.EqualTo(plain).Within(2e-5 * plain));
        Assert.That(model.Training, Is.EqualTo(training), "the training mode is restored");
    }
}
