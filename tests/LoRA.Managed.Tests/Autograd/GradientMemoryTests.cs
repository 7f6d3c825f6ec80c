using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Autograd;

/// <summary>
/// The memory rules of backward: intermediate gradients go back to the pool once spent, reshapes and attention's
/// softmax are views, and cross-entropy's gradient buffer becomes the logits' gradient. Each must leave every
/// gradient exactly what it was when every tensor had its own buffers.
/// </summary>
public class GradientMemoryTests
{
    [Test]
    public void AfterBackwardOnlyLeavesKeepAGradient()
    {
        var g = new TorchGenerator(1);
        Tensor x = g.Rand(3, 4); x.RequiresGrad = true;
        Tensor w = g.Rand(5, 4); w.RequiresGrad = true;
        Tensor h = Functional.Relu(Functional.Linear(x, w));
        Tensor loss = Functional.CrossEntropy(h, [0, 4, 2]);
        loss.Backward();
        Assert.That(h.HasGrad, Is.False, "an intermediate's gradient is returned to the pool once its op has run");
        Assert.That(x.HasGrad && w.HasGrad, Is.True);
        Assert.That(TensorPrimitivesNorm(w.Grad), Is.GreaterThan(0));
    }

    [Test]
    public void APooledBufferIsZeroedBeforeReuse()
    {
        // Two backward passes over the same shapes: the second rents the first's spent buffers and must get the same
        // gradients as a fresh pass, not the first's values added in.
        var g = new TorchGenerator(2);
        Tensor x = g.Rand(6, 7); x.RequiresGrad = true;
        Tensor w = g.Rand(7, 7); w.RequiresGrad = true;
        float[] Pass()
        {
            w.ZeroGrad(); x.ZeroGrad();
            Tensor y = Functional.Reshape(
                Functional.Gelu(Functional.Linear(Functional.Gelu(Functional.Linear(x, w)), w)), 42);
            Functional.CrossEntropy(Functional.Reshape(y, 6, 7), [1, 2, 3, 4, 5, 6]).Backward();
            return w.Grad.ToArray();
        }
        float[] first = Pass();
        Assert.That(Pass(), Is.EqualTo(first));
    }

    [Test]
    public void ReshapeIsAViewWithItsOwnGradient()
    {
        var x = new Tensor([1f, 2, 3, 4, 5, 6], 2, 3) { RequiresGrad = true };
        Tensor y = Functional.Reshape(x, 3, 2);
        Assert.That(ReferenceEquals(y.Array, x.Array), Is.True, "no copy");
        GradCheck.WeightedSum(y).Backward();
        Assert.That(x.Grad.ToArray(), Is.Not.All.Zero);
    }

    [Test]
    public void AnArenaNeverHandsOutAViewAsFreshStorage()
    {
        // Step 1 puts a reshape view in slot 1; step 2 asks slot 1 for a fresh tensor of the same shape. Writing into a
        // view would overwrite the tensor it views (slot 0's), so the arena must allocate instead.
        var arena = new TensorArena();
        var a = new Tensor([1f, 2, 3, 4], 2, 2);
        using (arena.Activate())
        {
            Tensor sq = Functional.Mul(a, a);                  // slot 0
            Tensor view = Functional.Reshape(sq, 2, 2);         // slot 1: a view of slot 0
            Assert.That(ReferenceEquals(view.Array, sq.Array), Is.True);
        }
        using (arena.Activate())
        {
            Tensor sq = Functional.Mul(a, a);                  // slot 0 again
            Tensor other = Functional.Add(a, a);               // slot 1: must not be the view
            Assert.That(ReferenceEquals(other.Array, sq.Array), Is.False);
            Assert.That(sq.Data.ToArray(), Is.EqualTo(new[] { 1f, 4, 9, 16 }));
            Assert.That(other.Data.ToArray(), Is.EqualTo(new[] { 2f, 4, 6, 8 }));
        }
    }

    [TestCase(1, 1)]
    [TestCase(3, 7)]
    [TestCase(2, 65)]
    public void InPlaceCausalSoftmaxGivesTheSameValuesAndGradients(int matrices, int t)
    {
        var g = new TorchGenerator(3);
        Tensor a = g.Rand(matrices, t, t), b = a.Clone();
        a.RequiresGrad = b.RequiresGrad = true;
        // The scores come from an op, as in attention (a leaf would be overwritten, which is the caller's choice).
        // One backward at a time: a backward runs and then clears the whole tape.
        Tensor pa = Functional.CausalSoftmax(Functional.Scale(a, 2f), 0.7f);
        float[] expected = pa.Data.ToArray();
        GradCheck.WeightedSum(pa).Backward();
        Tensor sb = Functional.Scale(b, 2f);
        Tensor pb = Functional.CausalSoftmax(sb, 0.7f, inPlace: true);
        Assert.That(ReferenceEquals(pb.Array, sb.Array), Is.True, "written over the scores");
        Assert.That(pb.Data.ToArray(), Is.EqualTo(expected));
        GradCheck.WeightedSum(pb).Backward();
        Assert.That(b.Grad.ToArray(), Is.EqualTo(a.Grad.ToArray()));
    }

    [Test]
    public void InPlaceCausalSoftmaxPassesTheFiniteDifferenceCheck()
    {
        var g = new TorchGenerator(4);
        Tensor x = g.Rand(2, 7, 7); x.RequiresGrad = true;
        GradCheck.Check(() =>
            GradCheck.WeightedSum(Functional.CausalSoftmax(Functional.Scale(x, 1f), 0.7f, inPlace: true)),
            new[] { x }, eps: 1e-3f);
    }

    [Test]
    public void CrossEntropyGradientIsScaledByTheUpstreamGradientAndAddsToAnExistingOne()
    {
        var g = new TorchGenerator(5);
        Tensor z = g.Rand(4, 6); z.RequiresGrad = true;
        int[] labels = [0, 5, 2, 3];
        // Reference: the loss alone, then the loss scaled by 0.375 through an op, added to a second use of z.
        Functional.CrossEntropy(Functional.Scale(z, 1f), labels).Backward();
        float[] once = z.Grad.ToArray();
        z.ZeroGrad();
        Tensor logits = Functional.Scale(z, 1f);
        Tensor loss = Functional.Add(Functional.Scale(Functional.CrossEntropy(logits, labels), 0.375f),
            Functional.Scale(Functional.CrossEntropy(logits, labels), 0.625f));
        loss.Backward();
        float[] sum = z.Grad.ToArray();
        for (int i = 0; i < once.Length; i++) Assert.That(sum[i], Is.EqualTo(once[i]).Within(1e-6f), $"element {i}");
    }

    private static double TensorPrimitivesNorm(ReadOnlySpan<float> x) =>
        System.Numerics.Tensors.TensorPrimitives.Norm(x);
}

/// <summary><c>LowRankAddOp</c> against its reference twin, the unfused <c>Add(y, Scale(Linear(a, B),
/// s))</c>.</summary>
public class LowRankAddOpTests
{
    [TestCase(1, 1, 1)]
    [TestCase(7, 63, 4)]
    [TestCase(65, 129, 8)]
    [TestCase(3, 65, 1)]
    public void FusedEqualsTheUnfusedOpsBitForBit(int n, int outF, int r)
    {
        var g = new TorchGenerator((ulong)(n * 1000 + outF * 10 + r));
        int inF = 5;
        Tensor x = g.Rand(n, inF), w = g.Rand(outF, inF), a = g.Rand(r, inF), b = g.Rand(outF, r);
        foreach (var t in new[] { x, a, b }) t.RequiresGrad = true;
        Tensor refOut = Functional.Add(Functional.Linear(x, w),
            Functional.Scale(Functional.Linear(Functional.Linear(x, a), b), 0.37f));
        float[] refY = refOut.Data.ToArray();
        GradCheck.WeightedSum(refOut).Backward();
        float[][] refGrads = [x.Grad.ToArray(), a.Grad.ToArray(), b.Grad.ToArray()];
        foreach (var t in new[] { x, a, b }) t.ZeroGrad();

        Tensor fused = LoRA.Managed.Autograd.Ops.LowRankAddOp.Apply(Functional.Linear(x, w), Functional.Linear(x, a),
            b, 0.37f);
        Assert.That(fused.Data.ToArray(), Is.EqualTo(refY));
        GradCheck.WeightedSum(fused).Backward();
        Assert.That(x.Grad.ToArray(), Is.EqualTo(refGrads[0]), "∂x");
        Assert.That(a.Grad.ToArray(), Is.EqualTo(refGrads[1]), "∂A");
        Assert.That(b.Grad.ToArray(), Is.EqualTo(refGrads[2]), "∂B");
    }

    [Test]
    public void PassesTheFiniteDifferenceCheck()
    {
        var g = new TorchGenerator(9);
        Tensor x = g.Rand(7, 6), w = g.Rand(9, 6), a = g.Rand(3, 6), b = g.Rand(9, 3);
        foreach (var t in new[] { x, w, a, b }) t.RequiresGrad = true;
        GradCheck.Check(() => GradCheck.WeightedSum(
            LoRA.Managed.Autograd.Ops.LowRankAddOp.Apply(Functional.Linear(x, w), Functional.Linear(x, a), b, 1.5f)),
            new[] { x, w, a, b }, eps: 1e-2f);
    }

    [Test]
    public void MismatchedShapesAreNamed()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            LoRA.Managed.Autograd.Ops.LowRankAddOp.Apply(new Tensor(2, 5), new Tensor(2, 3), new Tensor(4, 3), 1f));
        Assert.That(ex!.Message, Does.Contain("[2, 5]").And.Contain("[4, 3]"));
    }
}
