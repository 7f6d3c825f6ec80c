using LoRA.Managed.Cli;
using LoRA.Managed.Data;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tests.Data;

namespace LoRA.Managed.Tests.Cli;

/// <summary>Runs the <c>lora</c> command in-process and captures what it prints.</summary>
internal static class LoraCli
{
    public static (int Code, string Out, string Err) Run(params string[] args) => Run(args, cancelOn: null);

    /// <summary>
    /// Runs <c>lora</c>, cancelling its token (what Ctrl+C, SIGTERM and SIGHUP do) as soon as it prints a line
    /// containing <paramref name="cancelOn"/>; with an empty string, before it starts.
    /// </summary>
    public static (int Code, string Out, string Err) Run(string[] args, string? cancelOn)
    {
        using var interrupt = new CancellationTokenSource();
        if (cancelOn == "") interrupt.Cancel();
        var output = new CancellingWriter(cancelOn, interrupt);
        var error = new StringWriter();
        int code = Program.Run(args, output, error, interrupt.Token);
        return (code, output.ToString(), error.ToString());
    }

    /// <summary>Standard output that presses "Ctrl+C" when a given text is written.</summary>
    private sealed class CancellingWriter(string? text, CancellationTokenSource interrupt) : StringWriter
    {
        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            if (!string.IsNullOrEmpty(text) && value is not null && value.Contains(text, StringComparison.Ordinal))
                interrupt.Cancel();
        }
    }
}

/// <summary>
/// A fixture for CLI tests over synthetic MNIST files: a scratch folder, and <c>$LORA_MANAGED_DATA</c> and
/// <see cref="ComputeThreads.Max"/> restored after each test (hence not parallelizable).
/// </summary>
[NonParallelizable]
public abstract class MnistCliFixture
{
    private string? _savedData;
    private int _savedThreads;

    /// <summary>The scratch folder of the current test.</summary>
    internal IdxTestFiles Files { get; private set; } = null!;

    [SetUp]
    public void SetUpFixture()
    {
        Files = new IdxTestFiles();
        _savedData = Environment.GetEnvironmentVariable(MnistFiles.DataEnvironmentVariable);
        _savedThreads = ComputeThreads.Max;
        Environment.SetEnvironmentVariable(MnistFiles.DataEnvironmentVariable, null);
    }

    [TearDown]
    public void TearDownFixture()
    {
        Environment.SetEnvironmentVariable(MnistFiles.DataEnvironmentVariable, _savedData);
        ComputeThreads.Max = _savedThreads;
        Files.Dispose();
    }

    /// <summary>Runs <c>lora</c> with <paramref name="args"/>.</summary>
    protected static (int Code, string Out, string Err) Lora(params string[] args) => LoraCli.Run(args);
}
