using LoRA.Managed.Kernels;

namespace LoRA.Managed.Tests.Kernels;

/// <summary>The kernels' persistent workers: every part runs exactly once, nesting and failures are safe.</summary>
public class ComputePoolTests
{
    private sealed class CountingJob : ComputeJob
    {
        public int[] Runs = new int[64];
        public Action<int>? Body;
        public override void Execute(int part)
        {
            Interlocked.Increment(ref Runs[part]);
            Body?.Invoke(part);
        }
    }

    [TestCase(1, 1), TestCase(2, 2), TestCase(7, 2), TestCase(5, 3), TestCase(32, 2), TestCase(33, 2),
     TestCase(64, 2), TestCase(3, 4)]
    public void EveryPartRunsExactlyOnce(int parts, int threads)
    {
        var job = new CountingJob();
        for (int rep = 0; rep < 200; rep++)
        {
            Array.Clear(job.Runs);
            ComputePool.Run(job, parts, threads);
            for (int p = 0; p < job.Runs.Length; p++)
                Assert.That(job.Runs[p], Is.EqualTo(p < parts ? 1 : 0), $"rep {rep}: part {p}");
        }
    }

    [TestCase(0, new[] { 0, 1, 2, 3 }), TestCase(1, new[] { 2, 3, 0, 1 }), TestCase(2, new[] { 3, 0, 1, 2 })]
    public void EachThreadTriesItsHomePartsFirst(int self, int[] order)
    {
        // 4 parts on 2 threads: the caller (0) owns parts 0–1, worker 1 owns 2–3, a third worker has no home and starts
        // at the last part, away from the caller's.
        Assert.That(Enumerable.Range(0, 4).Select(i => ComputePool.ClaimOrder(self, 4, 2, i)), Is.EqualTo(order));
    }

    [Test]
    public void HomeBlocksCoverEveryPartOnceForUnevenSplits()
    {
        foreach (int threads in new[] { 2, 3, 5 })
            foreach (int parts in new[] { 1, 2, 3, 7, 32 })
            {
                var firsts = new List<int>();
                for (int self = 0; self < threads; self++)
                {
                    int[] order = Enumerable.Range(0, parts)
                        .Select(i => ComputePool.ClaimOrder(self, parts, threads, i)).ToArray();
                    Assert.That(order.OrderBy(p => p), Is.EqualTo(Enumerable.Range(0, parts)),
                        $"thread {self} of {threads}, {parts} parts: every part once");
                    firsts.Add(order[0]);
                }
                Assert.That(firsts, Is.Ordered, $"{threads} threads, {parts} parts: home blocks in thread order");
            }
    }

    private sealed class SlowCountingJob : ComputeJob
    {
        public readonly int[] Runs = new int[8];

        public override void Execute(int part)
        {
            Interlocked.Increment(ref Runs[part]);
            Thread.SpinWait(2000);
        }
    }

    /// <summary>
    /// A worker that read a job's generation and was then delayed while the caller finished that job alone must not
    /// run parts of the next job before it is published (they would run twice). Delays injected at the two points of
    /// the race (found in review): the worker sleeps after reading the generation, the next caller after writing its
    /// job's fields.
    /// </summary>
    [Test, NonParallelizable]
    public void ALateWorkerNeverRunsPartsOfTheNextJob()
    {
        for (int rep = 0; rep < 3; rep++)
        {
            var a = new SlowCountingJob();
            var b = new SlowCountingJob();
            ComputePool.Run(new SlowCountingJob(), 2, 2); // the worker exists and is spinning
            Thread.Sleep(20);
            try
            {
                ComputePool.DelayBeforeClaimMs = 20;
                ComputePool.Run(a, 2, 2);                 // the worker wakes, then sleeps holding A's generation
                ComputePool.DelayBeforeClaimMs = 0;
                ComputePool.DelayBeforePublishMs = 60;    // B's fields written, its generation not yet published
                ComputePool.Run(b, 4, 2);
            }
            finally
            {
                ComputePool.DelayBeforeClaimMs = 0;
                ComputePool.DelayBeforePublishMs = 0;
            }
            Thread.Sleep(30);
            Assert.That(a.Runs.Take(2), Is.All.EqualTo(1), $"rep {rep}: job A");
            Assert.That(b.Runs.Take(4), Is.All.EqualTo(1), $"rep {rep}: job B, parts {string.Join(",", b.Runs)}");
        }
    }

    [Test]
    public void ANestedRunExecutesAllItsPartsOnTheCallingThread()
    {
        var inner = new CountingJob();
        var outer = new CountingJob();
        int innerThreadsOk = 0;
        outer.Body = _ =>
        {
            var threadIds = new int[4];
            var probe = new CountingJob { Body = p => threadIds[p] = Environment.CurrentManagedThreadId };
            ComputePool.Run(probe, 4, 2);
            if (threadIds.All(id => id == Environment.CurrentManagedThreadId))
                Interlocked.Increment(ref innerThreadsOk);
            ComputePool.Run(inner, 3, 2);
        };
        ComputePool.Run(outer, 2, 2);
        Assert.That(innerThreadsOk, Is.EqualTo(2));
        Assert.That(inner.Runs.Take(3), Is.All.EqualTo(2));
    }

    [Test]
    public void AnExceptionInAPartReachesTheCallerAndThePoolRecovers()
    {
        var failing = new CountingJob
        {
            Body = p => { if (p == 1) throw new InvalidOperationException("part 1 failed"); },
        };
        var ex = Assert.Throws<InvalidOperationException>(() => ComputePool.Run(failing, 4, 2));
        Assert.That(ex!.Message, Is.EqualTo("part 1 failed"));
        Assert.That(failing.Runs.Take(4), Is.All.EqualTo(1), "the other parts still ran");
        var ok = new CountingJob();
        ComputePool.Run(ok, 4, 2);
        Assert.That(ok.Runs.Take(4), Is.All.EqualTo(1));
    }

    [Test]
    public void ConcurrentCallersFromManyThreadsGetCorrectResults()
    {
        var errors = 0;
        Parallel.For(0, 8, t =>
        {
            var job = new CountingJob();
            for (int rep = 0; rep < 100; rep++)
            {
                Array.Clear(job.Runs);
                ComputePool.Run(job, 5, 2);
                if (job.Runs.Take(5).Any(r => r != 1) || job.Runs.Skip(5).Any(r => r != 0))
                    Interlocked.Increment(ref errors);
            }
        });
        Assert.That(errors, Is.Zero);
    }
}
