namespace LoRA.Managed.Tests.Autograd;

/// <summary>
/// <see cref="SteadyState.AllocatedBytes"/>, the measurement behind the "allocates nothing once warm" tests, fails the
/// steps it must: one that allocates every time, and a list that leaks an entry per step (whose growths come further
/// and further apart); and passes one that allocates nothing.
/// </summary>
public class SteadyStateTests
{
    private static object? s_sink;

    [Test]
    public void AStepThatAllocatesEveryTimeIsCaught() =>
        Assert.That(SteadyState.AllocatedBytes(() => s_sink = new byte[100], 4, budgetSeconds: 0.2), Is.GreaterThan(0));

    [Test]
    public void AListThatLeaksAnEntryPerStepIsCaught()
    {
        var leak = new List<int>();
        Assert.That(SteadyState.AllocatedBytes(() => leak.Add(1), 10, budgetSeconds: 1), Is.GreaterThan(0));
        Assert.That(leak, Has.Count.GreaterThan(64), "past a growth the clean windows did not reach");
    }

    [Test]
    public void AStepThatAllocatesNothingPasses()
    {
        int count = 0;
        Assert.That(SteadyState.AllocatedBytes(() => count++, 4), Is.Zero);
        Assert.That(count, Is.EqualTo(3 + 4 + 8));
    }
}
