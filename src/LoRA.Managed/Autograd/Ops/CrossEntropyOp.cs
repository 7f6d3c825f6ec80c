using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// Mean cross-entropy of logits (B, C) against integer labels, fused with log-softmax. The forward
/// pass already computes <c>(softmax − onehot)/B</c>; backward scales it by the upstream gradient.
/// </summary>
internal sealed class CrossEntropyOp : Op
{
    private Tensor _logits = null!, _dLogits = null!;

    public override string Name => "cross_entropy";

    public static Tensor Apply(Tensor logits, ReadOnlySpan<int> labels)
    {
        Shapes.RequireMatrix(logits, "cross_entropy", "logits");
        if (logits.Shape[0] != labels.Length)
            throw new ArgumentException($"cross_entropy: logits {Shapes.Format(logits.Shape)} but {labels.Length} labels.");
        bool record = Tape.ShouldRecord(logits);
        Tensor d = Tape.NewTensor(logits.Shape);
        float loss = CrossEntropyKernel.ForwardBackward(logits.Data, labels, logits.Shape[1], d.Data, record ? 1f : 0f);
        Tensor y = Tape.NewTensor([1]);
        y[0] = loss;
        if (record)
        {
            var op = Tape.Record<CrossEntropyOp>(y);
            op._logits = logits; op._dLogits = d;
        }
        return y;
    }

    public override void Backward()
    {
        if (!_logits.RequiresGrad) return;
        Span<float> g = _logits.EnsureGrad();
        TensorPrimitives.MultiplyAdd(_dLogits.Data, Output.Grad[0], g, g);
    }
}
