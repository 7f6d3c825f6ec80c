using System.Diagnostics;

namespace LoRA.Managed.Kernels;

/// <summary>
/// Work a kernel splits into a fixed number of independent parts. The split is chosen by the kernel
/// from the problem's shape alone, and each part writes its own disjoint outputs, so which thread runs
/// which part never changes a single bit of the result.
/// </summary>
internal abstract class ComputeJob
{
    /// <summary>Computes part <paramref name="part"/> (0-based) of the job.</summary>
    public abstract void Execute(int part);
}

/// <summary>
/// A small set of persistent worker threads for the kernels, one per extra core allowed by
/// <see cref="ComputeThreads.Max"/>. A training step issues a dozen parallel kernels of 50–500 µs each;
/// <c>Parallel.For</c> costs tens of µs per call to hand work to the thread pool (and allocates), which ate
/// the whole gain of a second core. Here the caller publishes a job with two writes, runs parts itself,
/// and workers, which spin briefly after each job before blocking, pick up the rest within a microsecond.
/// </summary>
/// <remarks>
/// <para>Parts are claimed dynamically: the caller takes parts too, so if a worker is descheduled on a busy
/// machine the caller simply does more of the job, with no waiting for it. Since the partition is fixed by the
/// kernel and parts are disjoint, results stay bitwise identical.</para>
/// <para>Each thread first claims its own <em>home</em> parts: of P parts on T threads, thread w (the caller is 0,
/// worker i is i) owns the block [w·P/T, (w+1)·P/T), and only then takes what is left of the others'. Kernels split
/// their data the same way from one op to the next (rows of the activations, runs of attention's slices), so a
/// core goes on reading the half of the data its own cache holds. With the first claim left to whichever thread
/// came first, the spinning worker often took part 0 and the caller part 1: on a machine whose two cores share
/// no cache, the GPT step's head split (permute) then ran 1.6× slower on two threads than on one
/// (docs/07-performance.md, "Home parts").</para>
/// <para>One job runs at a time. A call made while the pool is busy (a nested kernel inside a part, or
/// another thread's kernel) runs all its parts on the calling thread: same parts, same results.</para>
/// </remarks>
internal static class ComputePool
{
    // How long a worker keeps polling for the next job before blocking. The gaps between parallel kernels
    // of one training step (bias, ReLU, tape bookkeeping) are a few µs to a few tens of µs; a blocked
    // worker needs ~10–50 µs to wake, so spinning through those gaps is what makes small GEMMs pay.
    private static readonly long SpinTicks = Stopwatch.Frequency / 5000; // 200 µs

    private static readonly object Gate = new();
    private static Thread[] _workers = [];
    private static int _busy;

    // The published job. _state holds the job's generation (high 32 bits) and, in the low 32 bits, a bit per claimed
    // part (jobs of at most 32 parts) or else the next unclaimed part, so a part is claimed with one
    // compare-exchange that fails if the job has changed: a worker that wakes late can never run a part of a new job
    // with the previous job's arguments.
    private static ComputeJob? _job;
    private static int _parts, _threads, _donePart, _sleepers;
    private const int MaxMaskParts = 32;
    private static long _state;
    private static Exception? _failure;

    private static int Generation(long state) => (int)(state >> 32);

    // For tests only: delays that open the race between a late worker and the next job (ComputePoolTests).
    internal static int DelayBeforeClaimMs, DelayBeforePublishMs;

    /// <summary>
    /// Runs parts 0..<paramref name="parts"/>−1 of <paramref name="job"/> on up to <paramref name="threads"/>
    /// threads (the caller included) and returns when all are done. An exception in a part is rethrown here.
    /// </summary>
    public static void Run(ComputeJob job, int parts, int threads)
    {
        if (parts <= 0) return;
        if (parts == 1 || threads <= 1 || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            for (int p = 0; p < parts; p++) job.Execute(p);
            return;
        }
        try
        {
            EnsureWorkers(threads - 1);
            // Seal the finished job's generation first: every part claimed (the mask full, the counter past any end).
            // A worker that read that generation and was delayed may wake while the fields below are being written;
            // with the seal its claim fails instead of running a part of this job before it is published (it would
            // then run twice).
            long sealedState = Volatile.Read(ref _state) | 0xFFFF_FFFFL;
            Interlocked.Exchange(ref _state, sealedState);
            _job = job;
            _parts = parts;
            _threads = threads;
            _donePart = 0;
            _failure = null;
            if (DelayBeforePublishMs > 0) Thread.Sleep(DelayBeforePublishMs);
            int gen = Generation(Volatile.Read(ref _state)) + 1;
            Interlocked.Exchange(ref _state, (long)gen << 32); // full fence: the job is visible before its generation
            if (Volatile.Read(ref _sleepers) > 0)
                lock (Gate) Monitor.PulseAll(Gate);
            Work(gen, 0);
            var spin = new SpinWait();
            while (Volatile.Read(ref _donePart) < parts) spin.SpinOnce(sleep1Threshold: -1);
            _job = null;
            if (_failure is { } e) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
        }
        finally { Volatile.Write(ref _busy, 0); }
    }

    /// <summary>Claims and runs parts of job <paramref name="gen"/> until none are left: thread
    /// <paramref name="self"/>'s home parts first, then any other.</summary>
    private static void Work(int gen, int self)
    {
        int parts = _parts, threads = Math.Max(1, _threads);
        if (parts > MaxMaskParts)
        {
            WorkInOrder(gen);
            return;
        }
        for (int i = 0; i < parts; i++)
        {
            int part = ClaimOrder(self, parts, threads, i);
            while (true)
            {
                long s = Volatile.Read(ref _state);
                ComputeJob? job = _job;
                if (Generation(s) != gen || job is null) return;
                long bit = 1L << part;
                if ((s & bit) != 0) break;
                if (Interlocked.CompareExchange(ref _state, s | bit, s) != s) continue;
                Execute(job, part);
                break;
            }
        }
    }

    /// <summary>
    /// The <paramref name="i"/>-th part thread <paramref name="self"/> tries to claim: its home block
    /// [self·P/T, (self+1)·P/T) first, then on round from the block's end; a worker beyond the job's thread count
    /// has no home block and starts at the last part.
    /// </summary>
    internal static int ClaimOrder(int self, int parts, int threads, int i)
    {
        // A worker beyond the job's thread count has no home block: it starts at the last part, away from the caller's.
        int home = self < threads ? (int)((long)self * parts / threads) : parts - 1;
        return (home + i) % parts;
    }

    /// <summary>Jobs of more than <see cref="MaxMaskParts"/> parts: the next unclaimed part, by any thread.</summary>
    private static void WorkInOrder(int gen)
    {
        while (true)
        {
            long s = Volatile.Read(ref _state);
            ComputeJob? job = _job;
            int parts = _parts;
            uint part = (uint)s; // a sealed job's counter is 2³²−1
            if (Generation(s) != gen || job is null || part >= (uint)parts) return;
            if (Interlocked.CompareExchange(ref _state, s + 1, s) != s) continue;
            Execute(job, (int)part);
        }
    }

    private static void Execute(ComputeJob job, int part)
    {
        try { job.Execute(part); }
        catch (Exception e) { Interlocked.CompareExchange(ref _failure, e, null); }
        finally { Interlocked.Increment(ref _donePart); }
    }

    private static void EnsureWorkers(int count)
    {
        if (_workers.Length >= count) return;
        lock (Gate)
        {
            var grown = new Thread[count];
            Array.Copy(_workers, grown, _workers.Length);
            for (int i = _workers.Length; i < count; i++)
            {
                grown[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"LoRA.Managed compute {i + 1}" };
                grown[i].Start((Generation(Volatile.Read(ref _state)), i + 1));
            }
            _workers = grown;
        }
    }

    private static void WorkerLoop(object? start)
    {
        var (seen, self) = ((int, int))start!;
        while (true)
        {
            long t0 = Stopwatch.GetTimestamp();
            while (Generation(Volatile.Read(ref _state)) == seen && Stopwatch.GetTimestamp() - t0 < SpinTicks)
                Thread.SpinWait(20);
            if (Generation(Volatile.Read(ref _state)) == seen)
            {
                lock (Gate)
                {
                    Interlocked.Increment(ref _sleepers); // full fence before re-reading the generation
                    while (Generation(Volatile.Read(ref _state)) == seen) Monitor.Wait(Gate);
                    Interlocked.Decrement(ref _sleepers);
                }
            }
            seen = Generation(Volatile.Read(ref _state));
            if (DelayBeforeClaimMs > 0) Thread.Sleep(DelayBeforeClaimMs);
            Work(seen, self);
        }
    }
}
