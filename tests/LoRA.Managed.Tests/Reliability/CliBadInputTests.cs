using LoRA.Managed.Nn;
using LoRA.Managed.Cli;
using LoRA.Managed.Data;
using LoRA.Managed.IO;
using LoRA.Managed.Models;
using LoRA.Managed.Tensors;
using LoRA.Managed.Tests.Cli;

namespace LoRA.Managed.Tests.Reliability;

/// <summary>
/// Issue 18 through the command line: each bad value gets one line naming the option and exit status 2, and every
/// output path is checked before any training starts (the MNIST line, printed when data is loaded, never appears).
/// </summary>
public class CliBadInputTests : MnistCliFixture
{
    private string Data()
    {
        string data = Files.PathOf("mnist");
        Files.WriteMnist(data, side: 28, train: 40, test: 20);
        return data;
    }

    private static void RefusedBeforeWork((int Code, string Out, string Err) run, params string[] expected)
    {
        Assert.That(run.Code, Is.EqualTo(Program.ErrorExitCode), run.Out + run.Err);
        string[] lines = run.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), run.Err);
        foreach (string e in expected) Assert.That(lines[0], Does.Contain(e));
        Assert.That(run.Out, Does.Not.Contain("MNIST from"), "the check came after loading data");
    }

    [Test]
    public void AnExplicitDataDirectoryWithoutTheFilesIsAnErrorEvenWhenTheEnvironmentHasThem()
    {
        Environment.SetEnvironmentVariable(MnistFiles.DataEnvironmentVariable, Data());
        string empty = Files.PathOf("empty");
        Directory.CreateDirectory(empty);
        var run = Lora("train", "--digits", "0-7", "--epochs", "1", "--data", empty);
        RefusedBeforeWork(run, empty, MnistFiles.TrainImagesName);
    }

    [TestCase("train")]
    [TestCase("merge")]
    public void AnEmptyOutIsOneClearLine(string command)
    {
        string[] args = command == "train"
            ? ["train", "--digits", "0-7", "--data", Data(), "--out", ""]
            : ["merge", "--model", "m", "--adapter", "a", "--out", ""];
        RefusedBeforeWork(Lora(args), "--out", "empty");
    }

    [Test]
    public void ASymlinkOutIsRefusedAndItsTargetIsUntouched()
    {
        string target = Files.Write("real.safetensors", [1, 2, 3]);
        string link = Files.PathOf("link.safetensors");
        File.CreateSymbolicLink(link, target);
        RefusedBeforeWork(Lora("train", "--digits", "0-7", "--epochs", "1", "--data", Data(), "--out", link), "--out",
            "symbolic link");
        Assert.That(File.ReadAllBytes(target), Is.EqualTo(new byte[] { 1, 2, 3 }));
        Assert.That(new FileInfo(link).LinkTarget, Is.EqualTo(target));
    }

    [Test]
    public void AFifoOutOrJsonIsRefusedAndLeftInPlace()
    {
        string fifo = SpecialFiles.Fifo(Files.PathOf("out.fifo"));
        RefusedBeforeWork(Lora("train", "--digits", "0-7", "--epochs", "1", "--data", Data(), "--out", fifo), "--out",
            "not a regular file");
        RefusedBeforeWork(Lora("train", "--digits", "0-7", "--epochs", "1", "--data", Data(), "--json", fifo),
            "--json", "not a regular file");
        Assert.That(File.Exists(fifo), Is.True);
    }

    [Test]
    public void AnOutNameTooLongForItsTemporaryFileIsRefusedBeforeTraining()
    {
        string name = new string('m', OutputPath.MaxNameBytes - 10) + ".st";   // fits alone, not with the temp suffix
        RefusedBeforeWork(Lora("train", "--digits", "0-7", "--epochs", "1", "--data", Data(), "--out",
            Files.PathOf(name)), "--out", "shorter name");
    }

    [Test]
    public void AnOutInAFolderThatCannotHoldFilesIsRefusedBeforeTraining()
    {
        if (!Directory.Exists("/proc/self")) Assert.Ignore("needs Linux's /proc, where no file can be created even " +
            "by root");
        RefusedBeforeWork(Lora("train", "--digits", "0-7", "--epochs", "1", "--data", Data(), "--out",
            "/proc/model.safetensors"), "--out", "cannot create files in /proc");
    }

    [Test]
    public void AnUnwritableCheckpointDirectoryIsRefusedBeforeTraining()
    {
        if (!Directory.Exists("/proc/self")) Assert.Ignore("needs Linux's /proc");
        RefusedBeforeWork(Lora("train", "--digits", "0-7", "--epochs", "1", "--data", Data(), "--checkpoint-dir",
            "/proc/ckpt", "--checkpoint-every", "1"),
            "--checkpoint-dir", "cannot create files");
        string file = Files.Write("a-file", [1]);
        RefusedBeforeWork(Lora("train", "--digits", "0-7", "--epochs", "1", "--data", Data(), "--checkpoint-dir",
            file), "--checkpoint-dir", "is a file");
    }

    [Test]
    public void HugeThreadCountsAreOneClearLine()
    {
        RefusedBeforeWork(Lora("train", "--digits", "0-7", "--data", Data(), "--threads", "2147483647"), "--threads",
            "from 1 to 1024");
    }

    [Test]
    public void ANanModelIsRefusedNamingTheTensorInsteadOfAnSvdIndexError()
    {
        var model = Mlp.Blog(new TorchGenerator(1));
        model.StateDict()["layers.5.weight"].Data[7] = float.NaN;
        string path = Files.PathOf("nan.safetensors");
        ModelFile.Save(model, path);
        var run = Lora("finetune", "--model", path, "--digits", "8,9", "--epochs", "1", "--data", Data(), "--out",
            Files.PathOf("adapter"));
        RefusedBeforeWork(run, path, "layers.5.weight", "NaN");
        Assert.That(run.Err, Does.Not.Contain("Index was outside"));
    }

    [Test]
    public void AFifoModelIsRefusedInsteadOfHanging()
    {
        string fifo = SpecialFiles.Fifo(Files.PathOf("model.fifo"));
        (int, string, string) run = default;
        SpecialFiles.Within(TimeSpan.FromSeconds(20), () => run = Lora("eval", "--model", fifo, "--digits", "8,9",
            "--data", Data()), fifo);
        RefusedBeforeWork(run, fifo, "not a regular file");
    }

    [Test]
    public void ALabelOutOfRangeMakesEvalFailNamingFileIndexAndValue()
    {
        string data = Data();
        var model = Mlp.Blog(new TorchGenerator(1));
        string path = Files.PathOf("m.safetensors");
        ModelFile.Save(model, path);
        string labels = Path.Combine(data, MnistFiles.TestLabelsName);
        byte[] bytes = File.ReadAllBytes(labels);
        bytes[8 + 11] = 200;
        File.WriteAllBytes(labels, bytes);
        var run = Lora("eval", "--model", path, "--digits", "0-9", "--data", data);
        Assert.That(run.Code, Is.EqualTo(Program.ErrorExitCode));
        Assert.That(run.Err, Does.Contain(labels).And.Contain("label 11").And.Contain("200"));
    }
}
