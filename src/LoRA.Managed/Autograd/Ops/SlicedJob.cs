using LoRA.Managed.Kernels;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// A batch of independent small products (attention's slices, one per batch item and head), run in runs of
/// consecutive slices. Each slice is computed by one thread in one order and writes only its own outputs, so the split
/// never changes a bit.
/// </summary>
internal abstract class SlicedJob : ComputeJob
{
    private int _per, _batch;

    /// <summary>Computes slice <paramref name="s"/>.</summary>
    public abstract void ExecuteSlice(int s);

    /// <summary>Whether a slice's products run in blocks of rows (attention's causal products,
    /// <see cref="CausalSlices"/>), too small for the GEMM to split however large the slice.</summary>
    protected virtual bool RowBlocks => false;

    /// <summary>Part p is slices p·per to (p + 1)·per − 1.</summary>
    public sealed override void Execute(int part)
    {
        int end = Math.Min(_batch, (part + 1) * _per);
        for (int s = part * _per; s < end; s++) ExecuteSlice(s);
    }

    /// <summary>
    /// Runs every slice of <paramref name="job"/>: serially on one thread, or when a slice is large enough for the GEMM
    /// to split it itself; else in two runs of consecutive slices per thread. Slices whose products run in blocks of
    /// rows (<see cref="RowBlocks"/>: attention's causal products, <see cref="CausalSlices"/>) are split over the
    /// threads even when large, since blocks of 16–32 rows are too small for the GEMM to split well: a
    /// SmolLM2-135M-sized model's attention at T = 256 (3 slices of 12.6 M multiply-adds) ran on one thread while the
    /// other waited (docs/07-performance.md, "A Llama's fine-tuning step"). With a part per slice, claiming the
    /// 128 parts of attention's products (each ~0.5 µs of work) cost more than the second core gave (benchmarks'
    /// <c>--gpt-gemm --step</c>); two per thread leave some balance when one thread is slowed. The first runs go to the
    /// calling thread (<see cref="ComputePool"/>'s home parts): the first batch items, whose rows it computed before.
    /// </summary>
    public static void Run(SlicedJob job, int batch, long workPerSlice)
    {
        int threads = ComputeThreads.Max;
        bool gemmSplits = !job.RowBlocks && workPerSlice >= Gemm.ParallelThreshold;
        if (threads == 1 || batch < 2 || gemmSplits || workPerSlice * batch < Gemm.ParallelThreshold)
        {
            for (int s = 0; s < batch; s++) job.ExecuteSlice(s);
            return;
        }
        int parts = Math.Min(batch, 2 * threads);
        int per = (batch + parts - 1) / parts;
        job._per = per;
        job._batch = batch;
        ComputePool.Run(job, (batch + per - 1) / per, threads);
    }
}
