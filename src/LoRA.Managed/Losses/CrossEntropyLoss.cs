using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Losses;

/// <summary>
/// <c>nn.CrossEntropyLoss()</c> with mean reduction: log-softmax and negative log-likelihood fused,
/// stable for large logits (see <see cref="Kernels.LogSoftmax"/>).
/// </summary>
public sealed class CrossEntropyLoss
{
    /// <summary>The mean loss of logits (B, C) against labels in 0..C−1, as a one-element tensor.</summary>
    public Tensor Forward(Tensor logits, ReadOnlySpan<int> labels) => Functional.CrossEntropy(logits, labels);
}
