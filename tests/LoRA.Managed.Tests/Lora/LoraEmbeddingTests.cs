using LoRA.Managed.Autograd;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using LoRA.Managed.Tests.Autograd;

namespace LoRA.Managed.Tests.Lora;

/// <summary>PEFT's <c>lora.Embedding</c> on one table: names, initialisation, forward against the merged table,
/// gradients by finite differences, merge and unmerge.</summary>
public class LoraEmbeddingTests
{
    private static LoraEmbedding Make(int vocab, int dim, int rank, ulong seed = 5)
    {
        var g = new TorchGenerator(seed);
        var table = new Embedding(vocab, dim, new TorchGenerator(9));
        var layer = new LoraEmbedding(table, "probe");
        layer.AddAdapter("default", new LoraConfig { Rank = rank, Alpha = 6 }, g);
        return layer;
    }

    private static void Randomise(LoraEmbedding layer, ulong seed)
    {
        var g = new TorchGenerator(seed);
        g.FillUniform(layer.LoraEmbeddingA["default"].Data, -1f, 1f);
        g.FillUniform(layer.LoraEmbeddingB["default"].Data, -1f, 1f);
    }

    [Test]
    public void NamesShapesAndInitialisationFollowPeft()
    {
        var layer = Make(11, 6, 3);
        Assert.That(layer.NamedParameters().Select(p => p.Key),
            Is.EqualTo(new[] { "base_layer.weight", "lora_embedding_A.default", "lora_embedding_B.default" }));
        Assert.That(layer.LoraEmbeddingA["default"].Shape, Is.EqualTo(new[] { 3, 11 }));
        Assert.That(layer.LoraEmbeddingB["default"].Shape, Is.EqualTo(new[] { 6, 3 }));
        Assert.That(layer.LoraEmbeddingA["default"].Data.ToArray(), Is.All.Zero);
        // B is drawn normal(0, 1) (TorchGenerator's normal draws, not torch's exact stream).
        Assert.That(layer.LoraEmbeddingB["default"].Data.ToArray(), Has.Some.Not.Zero);
        int[] ids = [3, 0, 10, 3];
        Tensor y = layer.Forward(ids, 4);
        layer.AdaptersDisabled = true;
        Assert.That(y.Data.ToArray(), Is.EqualTo(layer.Forward(ids, 4).Data.ToArray()));
    }

    [TestCase(1, 7, 1, 1)]
    [TestCase(65, 63, 4, 7)]
    [TestCase(129, 33, 5, 2)]
    public void LookupEqualsTheMergedTable(int vocab, int dim, int rank, int rows)
    {
        var layer = Make(vocab, dim, rank);
        Randomise(layer, 12);
        var g = new TorchGenerator(3);
        int[] ids = Enumerable.Range(0, rows * 3).Select(i => (int)(g.Rand(1)[0] * vocab) % vocab).ToArray();
        Tensor y = layer.Forward(ids, rows, 3);
        Assert.That(y.Shape, Is.EqualTo(new[] { rows, 3, dim }));
        Tensor delta = layer.DeltaWeight("default");
        Tensor w = layer.BaseLayer.Weight;
        for (int n = 0; n < ids.Length; n++)
            for (int d = 0; d < dim; d++)
            {
                double want = (double)w[ids[n], d] + delta[ids[n], d];
                Assert.That(y.Data[n * dim + d], Is.EqualTo(want).Within(1e-5 * (1 + Math.Abs(want))), $"[{n},{d}]");
            }
    }

    [Test]
    public void GradientsMatchFiniteDifferences()
    {
        var layer = Make(9, 5, 2);
        Randomise(layer, 13);
        layer.BaseLayer.Weight.RequiresGrad = true;   // the lookup's own gradient too (frozen in a model)
        int[] ids = [4, 0, 8, 4, 2, 4];              // repeated ids accumulate
        GradCheck.Check(() => GradCheck.WeightedSum(layer.Forward(ids, 2, 3)),
            [layer.LoraEmbeddingA["default"], layer.LoraEmbeddingB["default"], layer.BaseLayer.Weight]);
    }

    [Test]
    public void TheColumnLookupGradientMatchesFiniteDifferences()
    {
        var g = new TorchGenerator(14);
        Tensor table = GradCheck.Param(g, 3, 7);
        int[] ids = [6, 1, 6, 0];
        GradCheck.Check(() =>
            GradCheck.WeightedSum(LoRA.Managed.Autograd.Ops.EmbeddingColumnsOp.Apply(table, ids, [4])), [table]);
        Assert.Throws<ArgumentOutOfRangeException>(() => LoRA.Managed.Autograd.Ops.EmbeddingColumnsOp.Apply(table,
            [7], [1]));
    }

    [Test]
    public void MergeAndUnmergeRoundTrip()
    {
        var layer = Make(13, 7, 3);
        Randomise(layer, 15);
        float[] original = layer.BaseLayer.Weight.Data.ToArray();
        int[] ids = [1, 12, 5, 5, 0];
        float[] adapted = layer.Forward(ids, 5).Data.ToArray();
        layer.Merge();
        float[] merged = layer.Forward(ids, 5).Data.ToArray();
        Assert.That(merged.Zip(adapted, (a, b) => Math.Abs(a - b)).Max(), Is.LessThan(1e-6f));
        layer.Unmerge();
        Assert.That(layer.BaseLayer.Weight.Data.ToArray(), Is.EqualTo(original));
        Assert.That(layer.Forward(ids, 5).Data.ToArray(), Is.EqualTo(adapted));
    }

    [Test]
    public void DoraAndSvdInitOnAnEmbeddingAreRefusedByName()
    {
        var table = new Embedding(9, 5, new TorchGenerator(1));
        var layer = new LoraEmbedding(table, "wte");
        var ex = Assert.Throws<ArgumentException>(() =>
            layer.AddAdapter("d", new LoraConfig { Rank = 2, UseDora = true }, new TorchGenerator(1)));
        Assert.That(ex!.Message, Does.Contain("wte").And.Contain("DoRA"));
        Assert.Throws<ArgumentException>(() => layer.AddAdapter("s", new LoraConfig { Rank = 2, Init = LoraInit.Svd },
            new TorchGenerator(1)));
    }
}
