using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// Mean cross-entropy of logits (B, C) against integer labels, fused with log-softmax. The forward
/// pass already computes <c>(softmax − onehot)/B</c>; backward scales it by the upstream gradient.
/// </summary>
internal sealed class CrossEntropyOp : Op
{
    private readonly Tensor _logits;
    private readonly float[] _dLogits;

    private CrossEntropyOp(Tensor loss, Tensor logits, float[] dLogits) : base(loss) { _logits = logits; _dLogits = dLogits; }

    public override string Name => "cross_entropy";

    public static Tensor Apply(Tensor logits, ReadOnlySpan<int> labels)
    {
        Shapes.RequireMatrix(logits, "cross_entropy", "logits");
        if (logits.Shape[0] != labels.Length)
            throw new ArgumentException($"cross_entropy: logits {Shapes.Format(logits.Shape)} but {labels.Length} labels.");
        bool record = Tape.ShouldRecord(logits);
        var d = new float[logits.Count];
        float loss = CrossEntropyKernel.ForwardBackward(logits.Data, labels, logits.Shape[1], d, record ? 1f : 0f);
        var y = new Tensor(new[] { loss }, 1);
        if (record) Tape.Current.Record(new CrossEntropyOp(y, logits, d));
        return y;
    }

    public override void Backward()
    {
        if (!_logits.RequiresGrad) return;
        Span<float> g = _logits.EnsureGrad();
        TensorPrimitives.MultiplyAdd(_dLogits, Output.Grad[0], g, g);
    }
}
