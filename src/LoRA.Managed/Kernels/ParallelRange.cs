namespace LoRA.Managed.Kernels;

/// <summary>A kernel body that computes items [start, end) of a range, each item independently of the
/// others.</summary>
internal interface IRangeBody
{
    /// <summary>Computes items [<paramref name="start"/>, <paramref name="end"/>).</summary>
    void Run(int start, int end);
}

/// <summary>
/// Splits an elementwise or row-wise kernel over <see cref="ComputeThreads.Max"/> threads on
/// <see cref="ComputePool"/>. Part boundaries fall on multiples of <c>align</c>: a kernel that works in chunks of
/// that size from the start of its range then computes every item exactly as the serial loop does, so the bits do
/// not depend on the thread count. The transformer's GELU and causal softmax ran on one core while the other waited
/// for the next GEMM; they are large enough (a 32×64×256 GELU is half a million elements) to split.
/// </summary>
internal static unsafe class ParallelRange
{
    // Below this many elements a second thread costs more than an elementwise pass saves.
    private const int MinElementsPerThread = 32 * 1024;

    /// <summary><c>destination = a + b</c> (destination may alias either), split over threads: each element is added
    /// alone, so any split gives the same bits.</summary>
    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> destination)
    {
        if (a.Length != destination.Length || b.Length != destination.Length)
            throw new ArgumentException($"ParallelRange.Add: lengths {a.Length}, {b.Length} and " +
                $"{destination.Length} differ.");
        fixed (float* pa = a, pb = b, pd = destination)
            For(new AddBody(pa, pb, pd), destination.Length, 16, MinElementsPerThread);
    }

    /// <summary><c>destination = source</c>, split over threads.</summary>
    public static void Copy(ReadOnlySpan<float> source, Span<float> destination)
    {
        if (source.Length != destination.Length)
            throw new ArgumentException($"ParallelRange.Copy: lengths {source.Length} and " +
                $"{destination.Length} differ.");
        fixed (float* ps = source, pd = destination)
            For(new CopyBody(ps, pd), destination.Length, 16, MinElementsPerThread);
    }

    private readonly struct AddBody(float* a, float* b, float* destination) : IRangeBody
    {
        public void Run(int start, int end) => System.Numerics.Tensors.TensorPrimitives.Add(
            new ReadOnlySpan<float>(a + start, end - start), new ReadOnlySpan<float>(b + start, end - start),
            new Span<float>(destination + start, end - start));
    }

    private readonly struct CopyBody(float* source, float* destination) : IRangeBody
    {
        public void Run(int start, int end) =>
            new ReadOnlySpan<float>(source + start, end - start)
                .CopyTo(new Span<float>(destination + start, end - start));
    }

    /// <summary>
    /// Runs <paramref name="body"/> over [0, <paramref name="count"/>): serially below 2·<paramref name="minPerPart"/>
    /// items or on one thread, else in up to <see cref="ComputeThreads.Max"/> parts of at least
    /// <paramref name="minPerPart"/> items, each starting at a multiple of <paramref name="align"/>.
    /// </summary>
    public static void For<T>(T body, int count, int align, int minPerPart) where T : struct, IRangeBody
    {
        int threads = ComputeThreads.Max;
        int parts = Math.Min(threads, count / Math.Max(1, minPerPart));
        if (parts <= 1)
        {
            body.Run(0, count);
            return;
        }
        int step = (count / parts + align - 1) / align * align;
        parts = (count + step - 1) / step;
        var job = Job<T>.Current ??= new Job<T>();
        job.Set(body, count, step);
        try { ComputePool.Run(job, parts, threads); }
        finally { job.Clear(); }
    }

    private sealed class Job<T> : ComputeJob where T : struct, IRangeBody
    {
        [ThreadStatic] internal static Job<T>? Current;

        private T _body;
        private int _count, _step;

        public void Set(T body, int count, int step)
        {
            _body = body;
            _count = count;
            _step = step;
        }

        public void Clear() => _body = default;

        public override void Execute(int part)
        {
            int start = part * _step;
            if (start < _count) _body.Run(start, Math.Min(_count, start + _step));
        }
    }
}
