using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// A language model's head and its loss in one op: <c>L = cross_entropy(h·Wᵀ, y)</c> for hidden states h (N, C) and a
/// frozen head W (V, C), the logits formed a chunk of rows at a time and never held whole. The forward already knows
/// the gradient, <c>∂h = ((softmax(h·Wᵀ) − onehot(y)) / K)·W</c> (K kept rows), so it keeps that N×C matrix instead of
/// the N×V logits; backward scales it by the upstream gradient.
/// </summary>
/// <remarks>
/// With a vocabulary of 50,257 (GPT-2) a 256-token row's logits are 51 MB, and the unfused
/// <c>CrossEntropy(Linear(h, W))</c> holds them and their gradient through the step: a fifth of a LoRA fine-tune's
/// activation memory. This is the "fused linear cross-entropy" of Liger-Kernel (Hsu et al. 2024, §3.3). Only for a
/// frozen, bias-free head, as in LoRA fine-tuning (a trainable head needs ∂W = Σ ∂logitsᵀ·h, which this does not
/// form); the unfused composition is its reference twin in the tests.
/// </remarks>
internal sealed class LinearCrossEntropyOp : Op
{
    /// <summary>
    /// Rows of logits formed at once, their gradient then written over them
    /// (<see cref="CrossEntropyKernel.NllSumInPlace"/>): 128 × 50,257 floats is 26 MB, what two 64-row buffers (the
    /// logits and their gradient) took before. On a 49,152 × 576 head (SmolLM2-135M's) the 64-row products ran at
    /// 0.71× (logits) and 0.89× (∂h) the rate of 128-row ones on one thread, and the head was a quarter of a LoRA
    /// step (docs/07-performance.md, "A Llama's fine-tuning step").
    /// </summary>
    internal const int ChunkRows = 128;

    private Tensor _h = null!;
    private float[]? _dH;

    public override string Name => "linear_cross_entropy";

    public static Tensor Apply(Tensor h, Tensor w, ReadOnlySpan<int> labels)
    {
        Shapes.RequireMatrix(w, "linear_cross_entropy", "weight");
        if (w.RequiresGrad && Tape.IsGradEnabled)
            throw new ArgumentException("linear_cross_entropy: the head weight requires a gradient; use " +
                "CrossEntropy(Linear(h, W)).");
        return Run(h, w, null, w.Shape[0], w.Shape[1], labels);
    }

    /// <summary>As <see cref="Apply(Tensor, Tensor, ReadOnlySpan{int})"/> for a head stored quantised (a QLoRA base's
    /// head or tied table): each chunk's logits and ∂h go through <see cref="QuantizedGemm"/>, which expands W a
    /// panel at a time, so neither the float head nor the logits are ever whole.</summary>
    public static Tensor Apply(Tensor h, QuantizedMatrix w, ReadOnlySpan<int> labels)
    {
        ArgumentNullException.ThrowIfNull(w);
        return Run(h, null, w, w.Rows, w.Columns, labels);
    }

    private static Tensor Run(Tensor h, Tensor? wf, QuantizedMatrix? wq, int v, int wc, ReadOnlySpan<int> labels)
    {
        Shapes.RequireMatrix(h, "linear_cross_entropy", "hidden");
        int n = h.Shape[0], c = h.Shape[1];
        if (wc != c)
            throw new ArgumentException($"linear_cross_entropy: hidden {Shapes.Format(h.Shape)} does not fit weight " +
                $"[{v}, {wc}] (vocabulary × hidden).");
        if (labels.Length != n)
            throw new ArgumentException($"linear_cross_entropy: hidden {Shapes.Format(h.Shape)} but " +
                $"{labels.Length} labels.");
        int kept = CrossEntropyKernel.CountKept(labels, v);
        bool record = Tape.ShouldRecord(h);
        float gradPerRow = record ? 1f / kept : 0f;   // as CrossEntropyKernel.ForwardBackward: upstream 1 over K rows
        GradientPool pool = GradientPool.Current;
        int chunk = Math.Min(ChunkRows, n);
        float[] logits = pool.Rent(chunk * v);
        float[]? dH = record ? pool.Rent(n * c) : null;
        double total = 0;
        try
        {
            for (int r0 = 0, m; r0 < n; r0 += m)
            {
                m = Math.Min(chunk, n - r0);
                // A quantised head multiplies a lone row by its vector path, whose sums are ordered otherwise than the
                // GEMM's: a last chunk of one row would change its bits, so the chunk before it gives up a row.
                if (n - r0 - m == 1) m--;
                Span<float> z = logits.AsSpan(0, m * v);   // the logits, then their gradient
                ReadOnlySpan<float> hm = h.Data.Slice(r0 * c, m * c);
                if (wq is null) Gemm.Multiply(false, true, m, v, c, 1f, hm, c, wf!.Data, c, 0f, z, v);
                else QuantizedGemm.MultiplyTransposed(wq, m, hm, z);
                total += CrossEntropyKernel.NllSumInPlace(z, labels.Slice(r0, m), v, gradPerRow);
                if (dH is null) continue;
                Span<float> dHm = dH.AsSpan(r0 * c, m * c);
                if (wq is null) Gemm.Multiply(false, false, m, c, v, 1f, z, v, wf!.Data, c, 0f, dHm, c);
                else QuantizedGemm.MultiplyAccumulate(wq, m, z, dHm, beta: 0f);
            }
        }
        catch
        {
            if (dH is not null) pool.Return(dH);
            throw;
        }
        finally
        {
            pool.Return(logits);
        }
        Tensor y = Tape.NewTensor([1]);
        y[0] = (float)(total / kept);
        if (dH is not null)
        {
            var op = Tape.Record<LinearCrossEntropyOp>(y);
            op._h = h; op._dH = dH;
        }
        return y;
    }

    public override void Backward()
    {
        float[]? dH = _dH;
        _dH = null;   // returned to the pool below: a record must never use it twice
        if (dH is null)
            throw new InvalidOperationException("linear_cross_entropy: backward ran twice for one forward.");
        Span<float> g = _h.EnsureGrad();
        TensorPrimitives.MultiplyAdd(dH, Output.Grad[0], g, g);
        GradientPool.Current.Return(dH);
    }
}
