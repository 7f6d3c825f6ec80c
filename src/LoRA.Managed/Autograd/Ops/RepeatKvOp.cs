using LoRA.Managed.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// Grouped-query attention's <c>repeat_kv</c> (Hugging Face's <c>modeling_llama.py</c>): (B, H_kv, T, D) →
/// (B, H_kv·n, T, D), output head h being input head <c>h / n</c>. Backward sums each group's gradients into its head.
/// </summary>
internal sealed class RepeatKvOp : Op
{
    private Tensor _x = null!;
    private int _repeats;

    public override string Name => "repeat_kv";

    public static Tensor Apply(Tensor x, int repeats)
    {
        if (x.Rank != 4)
            throw new ArgumentException($"repeat_kv: expected (B, H_kv, T, D), got {Shapes.Format(x.Shape)}.");
        if (repeats < 1)
            throw new ArgumentOutOfRangeException(nameof(repeats), repeats, "repeat_kv: repeats must be at least 1.");
        if (repeats == 1) return x;
        int b = x.Shape[0], kv = x.Shape[1], block = x.Shape[2] * x.Shape[3];
        Tensor y = Tape.NewTensor([b, kv * repeats, x.Shape[2], x.Shape[3]]);
        ReadOnlySpan<float> src = x.Data;
        Span<float> dst = y.Data;
        for (int i = 0; i < b * kv; i++)
            for (int r = 0; r < repeats; r++)
                src.Slice(i * block, block).CopyTo(dst.Slice((i * repeats + r) * block, block));
        if (Tape.ShouldRecord(x))
        {
            var op = Tape.Record<RepeatKvOp>(y);
            op._x = x; op._repeats = repeats;
        }
        return y;
    }

    public override void Backward()
    {
        if (!_x.RequiresGrad) return;
        int block = _x.Shape[2] * _x.Shape[3], heads = _x.Shape[0] * _x.Shape[1];
        Span<float> dx = _x.EnsureGrad();
        ReadOnlySpan<float> dy = Output.Grad;
        for (int i = 0; i < heads; i++)
        {
            Span<float> g = dx.Slice(i * block, block);
            for (int r = 0; r < _repeats; r++) TensorPrimitives.Add(g, dy.Slice((i * _repeats + r) * block, block), g);
        }
    }
}
