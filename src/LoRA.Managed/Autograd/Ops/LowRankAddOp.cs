using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// LoRA's update added in place to the base layer's output: <c>y ← y + s·(a·Bᵀ)</c>, with y (N, out) the base output,
/// a = x·Aᵀ (N, r) and B (out, r) (Hu et al. 2021, eq. 3: <c>h = W₀x + (α/r)·BAx</c>). Backward, with g = ∂y:
/// <c>∂y_base += g</c>, <c>∂a += s·g·B</c>, <c>∂B += s·gᵀ·a</c>.
/// </summary>
/// <remarks>
/// The plain composition <c>Add(y, Scale(Linear(a, B), s))</c> holds three more N×out tensors per adapted layer
/// for the whole step (B's output, its scaled copy and the sum); for GPT-2's fused <c>c_attn</c> that is three
/// 2,304-wide activations per layer. Here B's output lives in a pooled buffer during the forward only, and the sum
/// overwrites y, which nothing reads again (a linear layer's backward needs its input, never its output). The
/// arithmetic is the composition's, operation for operation (the same GEMM, then one rounding for s·t and one for
/// the sum; the same GEMMs in backward on s·g), so results are bitwise those of the unfused ops, which the tests hold
/// it to as its reference twin.
/// </remarks>
internal sealed class LowRankAddOp : Op
{
    private Tensor _y = null!, _a = null!, _b = null!;
    private int _n, _r, _out;
    private float _s;

    public override string Name => "low_rank_add";

    public static Tensor Apply(Tensor y, Tensor a, Tensor b, float s)
    {
        Shapes.RequireMatrix(b, "low_rank_add", "B");
        int outF = b.Shape[0], r = b.Shape[1];
        if (y.Shape[^1] != outF || a.Shape[^1] != r)
            throw new ArgumentException($"low_rank_add: output {Shapes.Format(y.Shape)}, a {Shapes.Format(a.Shape)} " +
                $"and B {Shapes.Format(b.Shape)} do not fit y + s·a·Bᵀ.");
        int n = outF == 0 ? 0 : y.Count / outF;
        if ((long)n * r != a.Count)
            throw new ArgumentException($"low_rank_add: a {Shapes.Format(a.Shape)} has not the {n} rows of output " +
                $"{Shapes.Format(y.Shape)}.");
        GradientPool pool = GradientPool.Current;
        float[] t = pool.Rent(y.Count);
        Gemm.Multiply(false, true, n, outF, r, 1f, a.Data, r, b.Data, r, 0f, t, outF);
        TensorPrimitives.Multiply(t, s, t);
        TensorPrimitives.Add(y.Data, t, y.Data);
        pool.Return(t);
        Tensor sum = Tape.NewView(y, y.Shape);
        if (Tape.ShouldRecord(y, a, b))
        {
            var op = Tape.Record<LowRankAddOp>(sum);
            op._y = y; op._a = a; op._b = b; op._n = n; op._r = r; op._out = outF; op._s = s;
        }
        return sum;
    }

    public override void Backward()
    {
        ReadOnlySpan<float> g = Output.Grad;
        if (_y.RequiresGrad) AddOp.Accumulate(_y, g);   // the base output's gradient is usually still zero: a copy
        if (!_a.RequiresGrad && !_b.RequiresGrad) return;
        GradientPool pool = GradientPool.Current;
        float[] sg = pool.RentZeroed(g.Length);
        TensorPrimitives.MultiplyAdd(g, _s, sg, sg);   // as the scale op accumulates into a zero gradient
        // β = 0 into a logically zero gradient (Tensor.GradBeta)
        if (_a.RequiresGrad)
            Gemm.Multiply(false, false, _n, _r, _out, 1f, sg, _out, _b.Data, _r, _a.GradBeta(out float[] ga), ga, _r);
        if (_b.RequiresGrad)
            Gemm.Multiply(true, false, _out, _r, _n, 1f, sg, _out, _a.Data, _r, _b.GradBeta(out float[] gb), gb, _r);
        pool.Return(sg);
    }
}
