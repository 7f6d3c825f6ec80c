using LoRA.Managed.Autograd.Ops;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd;

/// <summary>
/// The differentiable operations, like <c>torch.nn.functional</c>. Each computes its forward with the
/// span kernels and, while grad mode is on and an input requires a gradient, records its backward rule.
/// </summary>
public static class Functional
{
    /// <summary><c>y = x·Wᵀ + b</c>; x (…, in), W (out, in), b (out) or null.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null) => LinearOp.Apply(x, weight, bias);

    /// <summary><c>op(A)·op(B)</c> for matrices; the flags transpose without copying.</summary>
    public static Tensor MatMul(Tensor a, Tensor b, bool transposeA = false, bool transposeB = false) =>
        MatMulOp.Apply(a, b, transposeA, transposeB);

    /// <summary><c>max(x, 0)</c>.</summary>
    public static Tensor Relu(Tensor x) => ReluOp.Apply(x);

    /// <summary><c>a + b</c> (same shape).</summary>
    public static Tensor Add(Tensor a, Tensor b) => AddOp.Apply(a, b);

    /// <summary><c>s·x</c>.</summary>
    public static Tensor Scale(Tensor x, float s) => ScaleOp.Apply(x, s);

    /// <summary>Inverted dropout with probability <paramref name="p"/>, drawing from <paramref name="generator"/>.</summary>
    public static Tensor Dropout(Tensor x, float p, TorchGenerator generator) => DropoutOp.Apply(x, p, generator);

    /// <summary>The same elements under a new shape.</summary>
    public static Tensor Reshape(Tensor x, params int[] shape) => ReshapeOp.Apply(x, shape);

    /// <summary>Mean cross-entropy of logits (B, C) against labels in 0..C−1 (<c>F.cross_entropy</c>).</summary>
    public static Tensor CrossEntropy(Tensor logits, ReadOnlySpan<int> labels) => CrossEntropyOp.Apply(logits, labels);
}
