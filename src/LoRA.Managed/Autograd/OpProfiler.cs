using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace LoRA.Managed.Autograd;

/// <summary>
/// Where a training step's time goes, op by op, measured inside the real step (PyTorch's <c>torch.profiler</c> in
/// miniature). While a profiler is started on a thread, the tape charges each recorded op with the time since the
/// previous record (its forward, with the module code around it) and times each op's <see cref="Op.Backward"/>;
/// <see cref="Mark"/> charges anything else (the optimizer, the data loader) by name.
/// </summary>
/// <remarks>
/// Forward times are the gaps between records, so work that records nothing (a frozen layer's product under
/// <see cref="Tape.NoGrad"/>, say) is charged to the next op recorded. With the profiler off the tape pays one null
/// check per record and per backward op.
/// </remarks>
public sealed class OpProfiler
{
    [ThreadStatic] private static OpProfiler? t_active;

    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private long _last;
    private int _steps;

    private sealed class Entry
    {
        public long ForwardTicks, BackwardTicks, OtherTicks;
        public int Calls;
    }

    /// <summary>The profiler started on this thread, or null.</summary>
    internal static OpProfiler? Active => t_active;

    /// <summary>Starts profiling this thread's tape (replacing any profiler already started on it).</summary>
    public static OpProfiler Start()
    {
        var p = new OpProfiler();
        t_active = p;
        p._last = Stopwatch.GetTimestamp();
        return p;
    }

    /// <summary>Stops profiling this thread (the figures gathered stay readable).</summary>
    public void Stop()
    {
        if (t_active == this) t_active = null;
    }

    /// <summary>Starts the clock for a step's first op: time since the last event is not charged.</summary>
    public void BeginStep()
    {
        _steps++;
        _last = Stopwatch.GetTimestamp();
    }

    /// <summary>Charges the time since the last event to <paramref name="name"/> (e.g. "Adam", "batch").</summary>
    public void Mark(string name)
    {
        long now = Stopwatch.GetTimestamp();
        Get(name).OtherTicks += now - _last;
        _last = now;
    }

    internal void Recorded(Op op)
    {
        long now = Stopwatch.GetTimestamp();
        Entry e = Get(op.Name);
        e.ForwardTicks += now - _last;
        e.Calls++;
        _last = now;
    }

    internal void Backward(Op op, long ticks) => Get(op.Name).BackwardTicks += ticks;

    /// <summary>Resets the clock after backward, so the time backward took is not charged to the next mark.</summary>
    internal void AfterBackward() => _last = Stopwatch.GetTimestamp();

    private Entry Get(string name)
    {
        if (!_entries.TryGetValue(name, out Entry? e)) _entries[name] = e = new Entry();
        return e;
    }

    /// <summary>One row per op or mark: µs per step forward, backward and in marks, calls per step, share of the
    /// total; sorted by total time.</summary>
    public string Table()
    {
        double perStep = 1e6 / Stopwatch.Frequency / Math.Max(1, _steps);
        var rows = _entries.Select(kv => (Name: kv.Key, Fwd: kv.Value.ForwardTicks * perStep,
            Bwd: kv.Value.BackwardTicks * perStep,
            Other: kv.Value.OtherTicks * perStep, Calls: (double)kv.Value.Calls / Math.Max(1, _steps)))
            .OrderByDescending(r => r.Fwd + r.Bwd + r.Other).ToList();
        double total = rows.Sum(r => r.Fwd + r.Bwd + r.Other);
        var sb = new StringBuilder();
        sb.AppendLine("| op | calls/step | forward µs | backward µs | other µs | share |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Name} | {r.Calls:0.#} | {r.Fwd:F1} | {r.Bwd:F1} | {r.Other:F1} | " +
                $"{(r.Fwd + r.Bwd + r.Other) / total:P0} |"));
        sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"| total per step | | {rows.Sum(r => r.Fwd):F1} | {rows.Sum(r => r.Bwd):F1} | " +
            $"{rows.Sum(r => r.Other):F1} | 100 % |"));
        return sb.ToString();
    }
}
