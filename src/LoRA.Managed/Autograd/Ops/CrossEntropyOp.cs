using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// Mean cross-entropy of logits (B, C) against integer labels, fused with log-softmax. The forward
/// pass already computes <c>(softmax − onehot)/B</c>; backward scales it by the upstream gradient.
/// </summary>
/// <remarks>
/// That B×C buffer is the logits' gradient in waiting, so it comes from the gradient pool and, in backward, becomes
/// the logits' gradient itself rather than being copied into a second B×C buffer: with a language model's vocabulary
/// (50,257 columns for GPT-2) each such buffer is tens of megabytes.
/// </remarks>
internal sealed class CrossEntropyOp : Op
{
    private Tensor _logits = null!;
    private float[]? _dLogits;

    public override string Name => "cross_entropy";

    public static Tensor Apply(Tensor logits, ReadOnlySpan<int> labels)
    {
        Shapes.RequireMatrix(logits, "cross_entropy", "logits");
        if (logits.Shape[0] != labels.Length)
            throw new ArgumentException($"cross_entropy: logits {Shapes.Format(logits.Shape)} but " +
                $"{labels.Length} labels.");
        bool record = Tape.ShouldRecord(logits);
        GradientPool pool = GradientPool.Current;
        float[] d = pool.Rent(logits.Count);   // the kernel overwrites every element
        float loss;
        try
        {
            loss = CrossEntropyKernel.ForwardBackward(logits.Data, labels, logits.Shape[1], d, record ? 1f : 0f);
        }
        catch
        {
            pool.Return(d);
            throw;
        }
        Tensor y = Tape.NewTensor([1]);
        y[0] = loss;
        if (record)
        {
            var op = Tape.Record<CrossEntropyOp>(y);
            op._logits = logits; op._dLogits = d;
        }
        else
        {
            pool.Return(d);
        }
        return y;
    }

    public override void Backward()
    {
        float[]? d = _dLogits;
        _dLogits = null;   // the buffer is handed on below: a record must never use it twice
        if (d is null) throw new InvalidOperationException("cross_entropy: backward ran twice for one forward.");
        float upstream = Output.Grad[0];
        // The same rounding as accumulating d·upstream into a zero gradient: one product per element, then + 0.
        if (upstream != 1f) TensorPrimitives.Multiply(d, upstream, d);
        if (_logits.RequiresGrad && _logits.TryAdoptGrad(d)) return;
        if (_logits.RequiresGrad) TensorPrimitives.Add(d, _logits.EnsureGrad(), _logits.EnsureGrad());
        GradientPool.Current.Return(d);
    }
}
