using LoRA.Managed.Sample;

namespace LoRA.Managed.Tests.Sample;

/// <summary>
/// The package sample (samples/LoRA.Managed.Sample) run in-process against the project: it must learn task B with
/// the adapter, reload the adapter unchanged, answer requests, refuse a bad line with one line, reuse its base model.
/// </summary>
public class SampleAppTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("lora-sample-test-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private (int Code, string Output) Run(string requests)
    {
        var output = new StringWriter { NewLine = "\n" };
        int code = SampleApp.Run(_dir, new StringReader(requests), output);
        return (code, output.ToString());
    }

    [Test]
    public void TrainsTheAdapterAndAnswersRequests()
    {
        var (code, output) = Run("0.5 -0.1\n0.1 0.8\nnot a point\n-0.6 -0.2\n\n0.3 0.3\n");
        Assert.That(code, Is.Zero, output);
        Assert.Multiple(() =>
        {
            Assert.That(output, Does.Contain("trained the base model on task A"));
            Assert.That(output, Does.Contain("same predictions as after training"));
            // (0.5, -0.1) is quadrant 3 but quadrant 0 once turned by 45°: the adapter answers B, the base A.
            Assert.That(output, Does.Contain("(0.5, -0.1): base 3, adapted 0 (task A 3, B 0)"));
            Assert.That(output, Does.Contain("(0.1, 0.8): base 0, adapted 1 (task A 0, B 1)"));
            Assert.That(output, Does.Contain("error: expected two numbers \"x y\", got \"not a point\""));
            Assert.That(output, Does.Contain("answered 3 requests"), "the empty line ends the requests");
            Assert.That(File.Exists(Path.Combine(_dir, "adapter", "adapter_config.json")), Is.True);
        });
    }

    [Test]
    public void ASecondRunLoadsTheSavedBaseModel()
    {
        Run("");
        byte[] baseBytes = File.ReadAllBytes(Path.Combine(_dir, "base.safetensors"));
        var (code, output) = Run("");
        Assert.That(code, Is.Zero, output);
        Assert.That(output, Does.Not.Contain("trained the base model"));
        Assert.That(File.ReadAllBytes(Path.Combine(_dir, "base.safetensors")), Is.EqualTo(baseBytes));
    }
}
