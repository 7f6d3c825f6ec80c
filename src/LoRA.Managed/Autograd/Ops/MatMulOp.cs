using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// <c>C = op(A)·op(B)</c> for matrices, op being identity or transpose. With C m×n and op(A) m×k:
/// <c>∂op(A) = ∂C·op(B)ᵀ</c> and <c>∂op(B) = op(A)ᵀ·∂C</c>; when an operand is stored transposed its
/// gradient is the transpose of that, which again is only a choice of GEMM flags.
/// </summary>
internal sealed class MatMulOp : Op
{
    private Tensor _a = null!, _b = null!;
    private bool _ta, _tb;
    private int _m, _n, _k;

    public override string Name => "matmul";

    public static Tensor Apply(Tensor a, Tensor b, bool transA, bool transB)
    {
        Shapes.RequireMatrix(a, "matmul", "A");
        Shapes.RequireMatrix(b, "matmul", "B");
        int m = transA ? a.Shape[1] : a.Shape[0], k = transA ? a.Shape[0] : a.Shape[1];
        int kb = transB ? b.Shape[1] : b.Shape[0], n = transB ? b.Shape[0] : b.Shape[1];
        if (k != kb)
            throw new ArgumentException("matmul: inner dimensions differ: A " +
                $"{Shapes.Format(a.Shape)}{(transA ? "ᵀ" : "")} and B {Shapes.Format(b.Shape)}{(transB ? "ᵀ" : "")}.");
        Tensor c = Tape.NewTensor([m, n]);
        Gemm.Multiply(transA, transB, m, n, k, 1f, a.Data, a.Shape[1], b.Data, b.Shape[1], 0f, c.Data, n);
        if (Tape.ShouldRecord(a, b))
        {
            var op = Tape.Record<MatMulOp>(c);
            op._a = a; op._b = b; op._ta = transA; op._tb = transB; op._m = m; op._n = n; op._k = k;
        }
        return c;
    }

    public override void Backward()
    {
        ReadOnlySpan<float> dc = Output.Grad;
        int lda = _a.Shape[1], ldb = _b.Shape[1];
        if (_a.RequiresGrad)
        {
            if (!_ta) Gemm.Multiply(false, !_tb, _m, _k, _n, 1f, dc, _n, _b.Data, ldb, 1f, _a.EnsureGrad(), _k);
            else Gemm.Multiply(_tb, true, _k, _m, _n, 1f, _b.Data, ldb, dc, _n, 1f, _a.EnsureGrad(), _m);
        }
        if (_b.RequiresGrad)
        {
            if (!_tb) Gemm.Multiply(!_ta, false, _k, _n, _m, 1f, _a.Data, lda, dc, _n, 1f, _b.EnsureGrad(), _n);
            else Gemm.Multiply(true, _ta, _n, _k, _m, 1f, dc, _n, _a.Data, lda, 1f, _b.EnsureGrad(), _k);
        }
    }
}
