using System.Diagnostics;
using CsCheck;
using LoRA.Managed.IO;

namespace LoRA.Managed.Tests.Fuzz;

/// <summary>A fuzz case's outcome is not one the parser documents: anything but success or
/// <see cref="InvalidDataFormatException"/>.</summary>
internal sealed class FuzzFailure(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>What one fuzz run did, for the test log and for sanity checks on the generator.</summary>
internal sealed record FuzzReport(string Parser, int Cases, int Accepted, int Rejected,
    IReadOnlyDictionary<string, int> Fields,
    TimeSpan Elapsed, TimeSpan Slowest, long LargestAllocation, long LargestAllocationInput, ulong Fingerprint)
{
    public override string ToString() =>
        $"{Parser}: {Cases:N0} cases in {Elapsed.TotalSeconds:F2} s (accepted {Accepted:N0}, rejected " +
        $"{Rejected:N0}); slowest case {Slowest.TotalMilliseconds:F1} ms; " +
        $"largest allocation {LargestAllocation:N0} bytes (input {LargestAllocationInput:N0} bytes); input " +
        $"fingerprint {Fingerprint:x16}" + Environment.NewLine +
        "  rejected fields: " +
        string.Join(", ", Fields.OrderByDescending(p => p.Value).Take(12).Select(p => $"{p.Key} {p.Value:N0}")) +
        (Fields.Count > 12
            ? $", {Fields.Count - 12} other fields " +
            $"{Fields.OrderByDescending(p => p.Value).Skip(12).Sum(p => p.Value):N0}" : "");
}

/// <summary>
/// Runs a parser over CsCheck-generated mutations of valid files and holds it to its contract: every case ends in
/// success (whose result must satisfy the format's invariants) or in <see cref="InvalidDataFormatException"/>
/// naming the source and a field, within an allocation budget and without hanging.
/// </summary>
internal static class ParserFuzzer
{
    /// <summary>Cases per parser per run.</summary>
    public const int Cases = 10_000;

    /// <summary>Name given to the parser for its error messages; every rejection must name it.</summary>
    public const string Source = "fuzz-input";

    /// <summary>
    /// Allocation budget: <c>BytesPerInputByte × input length + FixedAllowance</c>. A parser that validates before it
    /// allocates holds, per input byte, at most: the header or JSON copy (1 byte), System.Text.Json's token table
    /// (12-byte rows, at most one token per input byte, so 12), UTF-16 strings for names and messages (2), decoded
    /// tensors (F16/BF16 widen to float: 2 per data byte) and per-entry objects of the dictionaries (a tensor entry
    /// takes at least 50 header bytes and costs a few hundred bytes of objects, so under 10): about 30 in all; 64
    /// leaves room without letting a header-driven allocation through (a 4-byte size field claiming 2³¹ elements
    /// would need 2³¹ / 4 ≈ 5×10⁸ per byte). The fixed 1 MiB covers exception objects with their stack traces, the
    /// gzip reader's first 64 KiB chunk and buffers, and System.Text.Json's pooled buffers on first use.
    /// </summary>
    public const long BytesPerInputByte = 64;

    /// <inheritdoc cref="BytesPerInputByte"/>
    public const long FixedAllowance = 1 << 20;

    /// <summary>No single case may take this long; a parse loop that does not advance would.</summary>
    public static readonly TimeSpan SlowestAllowed = TimeSpan.FromSeconds(5);

    /// <summary>A case still running after this long is taken for a hang and ends the test process.</summary>
    public static readonly TimeSpan HangAfter = TimeSpan.FromSeconds(60);

    /// <param name="parser">Name for the report.</param>
    /// <param name="gen">The cases.</param>
    /// <param name="seed">Seed of the master PCG: fixed, so CI runs the same 10,000 inputs every time (the printed
    /// fingerprint shows it).</param>
    /// <param name="build">Makes the input bytes of a case (outside the measured window).</param>
    /// <param name="parse">The parser under test.</param>
    /// <param name="check">Invariants of an accepted result given its input; throw when one is broken.</param>
    /// <param name="effectiveLength">The length the allocation budget is based on (default: the input's; for gzip, the
    /// larger of it and the decompressed length).</param>
    public static FuzzReport Run<TCase>(string parser, Gen<TCase> gen, ulong seed, Func<TCase, byte[]> build,
        Func<byte[], object> parse, Action<byte[], object> check, Func<byte[], long>? effectiveLength = null)
    {
        int cases = 0, accepted = 0;
        var fields = new Dictionary<string, int>(StringComparer.Ordinal);
        long slowestTicks = 0;
        long largest = 0, largestInput = 0;
        // FNV-1a over every input, in order: equal across runs ⇔ same inputs
        ulong fingerprint = 14695981039346656037UL;

        var total = Stopwatch.StartNew();
        void RunCase(TCase c)
        {
            byte[] input = build(c);
            long length = effectiveLength?.Invoke(input) ?? input.Length;
            long budget = BytesPerInputByte * length + FixedAllowance;

            object? result = null;
            Exception? thrown = null;
            long before = GC.GetAllocatedBytesForCurrentThread();
            long start = Stopwatch.GetTimestamp();
            try { result = parse(input); }
            catch (Exception e) { thrown = e; }
            long ticks = Stopwatch.GetTimestamp() - start;
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

            cases++;
            foreach (byte b in input) fingerprint = (fingerprint ^ b) * 1099511628211UL;
            slowestTicks = Math.Max(slowestTicks, ticks);
            if (allocated > largest) (largest, largestInput) = (allocated, length);

            switch (thrown)
            {
                case null:
                    accepted++;
                    check(input, result!);
                    break;
                case InvalidDataFormatException e:
                    if (e.File != Source || string.IsNullOrEmpty(e.Field)
                        || !e.Message.StartsWith($"{Source}: {e.Field}: ", StringComparison.Ordinal))
                        throw new FuzzFailure($"rejection does not name the source and field: File='{e.File}', " +
                            $"Field='{e.Field}', Message='{Cut(e.Message)}'", e);
                    string key = FieldKind(e.Field);
                    fields[key] = fields.GetValueOrDefault(key) + 1;
                    break;
                default:
                    throw new FuzzFailure($"{thrown.GetType().FullName} escaped: {Cut(thrown.Message)}", thrown);
            }
            if (allocated > budget)
                throw new FuzzFailure($"allocated {allocated:N0} bytes for a {length:N0}-byte input (budget " +
                    $"{budget:N0}); outcome {(thrown is null ? "accepted" : Cut(thrown.Message))}");
            if (ticks > SlowestAllowed.TotalSeconds * Stopwatch.Frequency)
                throw new FuzzFailure($"one case took {ticks / (double)Stopwatch.Frequency:F1} s");
        }

        // CsCheck's own Sample(seed:) fixes only the first iteration, so the 10,000 cases are drawn here from one
        // master PCG: case i is generated from a PCG seeded by the master's i-th draw, the same on every run.
        // A failing case is handed back to CsCheck with its seed, which replays it and shrinks it to a smaller one.
        var master = new PCG(1, seed);
        string current = "";
        long caseStarted = Stopwatch.GetTimestamp();
        // A parse that never returns would hang the run, and SlowestAllowed is only checked after a case returns, so a
        // watchdog ends the process naming the stuck case (a hard stop: a hung parser thread cannot be cancelled).
        using var watchdog = new Timer(_ =>
        {
            if (Stopwatch.GetElapsedTime(Volatile.Read(ref caseStarted)) > HangAfter)
                Environment.FailFast($"{parser} fuzz case {Volatile.Read(ref current)} has run for over " +
                    $"{HangAfter.TotalSeconds} s: the parser hangs.");
        }, null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        for (int i = 0; i < Cases; i++)
        {
            var pcg = new PCG(1, master.Next64());
            string caseSeed = pcg.ToString();
            TCase c = gen.Generate(pcg, null, out _);
            Volatile.Write(ref current, $"{i} (CsCheck seed {caseSeed})");
            Volatile.Write(ref caseStarted, Stopwatch.GetTimestamp());
            try { RunCase(c); }
            catch (FuzzFailure first)
            {
                gen.Sample(RunCase, seed: caseSeed, iter: 1_000, threads: 1, print: x => $"{x} → {Hex(build(x))}");
                throw new FuzzFailure($"case {i} (CsCheck seed {caseSeed}) failed but did not fail again " +
                    "when replayed", first);
            }
        }
        total.Stop();

        return new FuzzReport(parser, cases, accepted, cases - accepted, fields, total.Elapsed,
            TimeSpan.FromSeconds(slowestTicks / (double)Stopwatch.Frequency), largest, largestInput, fingerprint);
    }

    /// <summary>Checks that the run exercised both sides of the parser: a generator that only produced garbage (or only
    /// valid files) proves little.</summary>
    public static void AssertMixed(FuzzReport report, double minAcceptedShare = 0.01, double minRejectedShare = 0.3)
    {
        TestContext.Out.WriteLine(report);
        Assert.That(report.Cases, Is.EqualTo(Cases));
        Assert.That(report.Accepted, Is.GreaterThanOrEqualTo((int)(minAcceptedShare * Cases)),
            "too few mutated files were still valid");
        Assert.That(report.Rejected, Is.GreaterThanOrEqualTo((int)(minRejectedShare * Cases)),
            "too few mutated files were rejected");
    }

    /// <summary>A tensor-specific field (<c>layers.1.weight.data_offsets</c>) counted under its last part.</summary>
    private static string FieldKind(string field)
    {
        int dot = field.LastIndexOf('.');
        string kind = dot < 0 ? field : "*." + field[(dot + 1)..];
        return kind.Length <= 30 ? kind : kind[..30] + "…";
    }

    private static string Cut(string s) => s.Length <= 300 ? s : s[..300] + "…";

    private static string Hex(byte[] b) => b.Length <= 256 ? Convert.ToHexString(b)
        : Convert.ToHexString(b.AsSpan(0, 256)) + $"… ({b.Length:N0} bytes)";
}
