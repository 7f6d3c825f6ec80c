using System.Runtime.Intrinsics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// Reorders dimensions (<c>x.permute(dims).contiguous()</c>): output dimension d is input dimension
/// <c>dims[d]</c>. Attention splits heads with <c>(B, T, nh, hs) → permute(0, 2, 1, 3) → (B, nh, T, hs)</c> and
/// merges them back with the same permutation. The result is a contiguous copy; backward scatters the
/// gradient back through the inverse permutation. When the last dimension stays last, whole rows are
/// copied (the head split's case); otherwise elements are moved one by one.
/// </summary>
internal sealed class PermuteOp : Op
{
    private Tensor _x = null!;
    // A copy of the permutation (the caller may reuse its array), kept on the reused record.
    private int[] _dims = [], _inverse = [];

    public override string Name => "permute";

    public static Tensor Apply(Tensor x, int[] dims)
    {
        ArgumentNullException.ThrowIfNull(dims);
        int rank = x.Rank;
        bool valid = dims.Length == rank;
        Span<bool> seen = stackalloc bool[rank];
        foreach (int d in dims)
        {
            if (!valid || (uint)d >= (uint)rank || seen[d]) { valid = false; break; }
            seen[d] = true;
        }
        if (!valid)
            throw new ArgumentException($"permute: [{string.Join(", ", dims)}] is not a permutation of the {rank} " +
                $"dimensions of {Shapes.Format(x.Shape)}.");
        Span<int> shape = stackalloc int[rank];
        for (int d = 0; d < rank; d++) shape[d] = x.Shape[dims[d]];
        Tensor y = Tape.NewTensor(shape);
        Move(x.Shape, dims, x.Data, y.Data, accumulateBack: false); // writes every element of y
        if (Tape.ShouldRecord(x))
        {
            var op = Tape.Record<PermuteOp>(y);
            op._x = x;
            if (op._dims.Length != rank) { op._dims = new int[rank]; op._inverse = new int[rank]; }
            dims.CopyTo(op._dims, 0);
            for (int d = 0; d < rank; d++) op._inverse[dims[d]] = d;
        }
        return y;
    }

    public override void Backward()
    {
        if (!_x.RequiresGrad) return;
        // The permutation reaches every element of x once: a gradient that is still zero is written, not cleared and
        // then added to.
        float[] dx = _x.GradForOverwrite(out bool overwrite);
        if (overwrite) Move(Output.Shape, _inverse, Output.Grad, dx, accumulateBack: false);
        else Move(_x.Shape, _dims, dx, Output.Grad, accumulateBack: true);
    }

    /// <summary>
    /// Walks the output in row-major order. Forward: <c>y[j] = x[src(j)]</c>. Backward
    /// (<paramref name="accumulateBack"/>): <c>x[src(j)] += y[j]</c>, where <c>xSpan</c> is then the input gradient and
    /// <c>ySpan</c> the output's.
    /// </summary>
    private static unsafe void Move(int[] inShape, int[] dims, Span<float> xSpan, Span<float> ySpan,
        bool accumulateBack)
    {
        int rank = inShape.Length;
        if (rank > MaxRank) throw new ArgumentException($"permute: rank {rank} is above {MaxRank}.");
        var layout = new Layout();
        Span<int> inStride = stackalloc int[rank];
        inStride[rank - 1] = 1;
        for (int d = rank - 2; d >= 0; d--) inStride[d] = inStride[d + 1] * inShape[d + 1];
        for (int d = 0; d < rank; d++)
        {
            layout.OutShape[d] = inShape[dims[d]];
            layout.StrideOfOut[d] = inStride[dims[d]];
        }
        int total = ySpan.Length;
        if (total == 0) return;
        // Copy runs of `run` contiguous elements when the last dimension is unchanged.
        bool rows = dims[rank - 1] == rank - 1;
        layout.Run = rows ? layout.OutShape[rank - 1] : 1;
        layout.Outer = rows ? rank - 1 : rank;
        // Runs are split over threads: the permutation sends each run to its own place, so any split moves (or, going
        // back, adds) exactly the same elements.
        fixed (float* px = xSpan, py = ySpan)
            ParallelRange.For(new MoveBody(layout, px, py, accumulateBack), total / layout.Run, 1,
                Math.Max(1, 32 * 1024 / layout.Run));
    }

    private const int MaxRank = 4;

    private unsafe struct Layout
    {
        public fixed int OutShape[MaxRank];
        public fixed int StrideOfOut[MaxRank];
        public int Run, Outer;
    }

    private readonly unsafe struct MoveBody(Layout layout, float* x, float* y, bool accumulateBack) : IRangeBody
    {
        private readonly Layout _layout = layout;

        public void Run(int firstRun, int endRun)
        {
            Layout l = _layout;
            int run = l.Run, outer = l.Outer;
            // The output index of the first run, digit by digit, and its source offset.
            Span<int> index = stackalloc int[MaxRank];
            int src = 0;
            for (int d = outer - 1, rest = firstRun; d >= 0; d--)
            {
                index[d] = rest % l.OutShape[d];
                rest /= l.OutShape[d];
                src += index[d] * l.StrideOfOut[d];
            }
            // The source offset follows the output index incrementally, and a head's row of 16 floats (attention's
            // usual head size) moves as one 512-bit vector: through Span.CopyTo per 16-float row, the head split and
            // merge took a tenth of lm-demo's step.
            bool oneVector = run == 16 && Vector512.IsHardwareAccelerated;
            for (int k = firstRun; k < endRun; k++)
            {
                float* xs = x + src, ys = y + (long)k * run;
                if (oneVector)
                {
                    if (!accumulateBack) Vector512.Load(xs).Store(ys);
                    else (Vector512.Load(xs) + Vector512.Load(ys)).Store(xs);
                }
                else if (!accumulateBack) new Span<float>(xs, run).CopyTo(new Span<float>(ys, run));
                else if (run == 1) *xs += *ys;
                else
                    TensorPrimitives.Add(new ReadOnlySpan<float>(xs, run), new ReadOnlySpan<float>(ys, run),
                        new Span<float>(xs, run));
                for (int d = outer - 1; d >= 0; d--)
                {
                    src += l.StrideOfOut[d];
                    if (++index[d] < l.OutShape[d]) break;
                    src -= l.OutShape[d] * l.StrideOfOut[d];
                    index[d] = 0;
                }
            }
        }
    }
}
