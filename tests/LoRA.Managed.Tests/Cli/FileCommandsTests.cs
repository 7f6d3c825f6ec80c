using System.Text.Json;
using LoRA.Managed.Cli;
using LoRA.Managed.Data;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tests.Data;

namespace LoRA.Managed.Tests.Cli;

/// <summary>svd-demo, and train → finetune → eval → merge on small synthetic MNIST files.</summary>
public class FileCommandsTests : MnistCliFixture
{
    [Test]
    public void SvdDemoReproducesTheBlogsExampleInJson()
    {
        string json = Files.PathOf("svd.json");
        var run = Lora("svd-demo", "--json", json);
        Assert.That(run.Code, Is.EqualTo(0), run.Err);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var root = doc.RootElement;
        Assert.That(root.EnumerateObject().Select(p => p.Name),
            Is.EquivalentTo(new[] { "W", "U", "S", "Vt", "A", "B", "W_approx", "frobenius_error_by_rank" }));
        double[][] approx = root.GetProperty("W_approx").Deserialize<double[][]>()!;
        double[][] blog = [[0.0374, 0.5079, 0.4906, 0.3878], [0.0747, 0.5884, 0.5673, 0.4529],
            [1.0059, 0.2161, 0.1760, 0.2814], [0.8896, 0.4589, 0.4149, 0.4510]];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                Assert.That(approx[i][j], Is.EqualTo(blog[i][j]).Within(5e-5), $"W_approx[{i}][{j}]");
        Assert.That(root.GetProperty("W")[0][0].GetDouble(), Is.EqualTo(0.09181702).Within(1e-7));
        double[] errors = root.GetProperty("frobenius_error_by_rank").Deserialize<double[]>()!;
        Assert.That(errors, Has.Length.EqualTo(4));
        Assert.That(errors, Is.Ordered.Descending);
        Assert.That(errors[3], Is.EqualTo(0).Within(1e-5));
        Assert.That(Lora("svd-demo", "--size", "3", "--rank", "4").Code, Is.EqualTo(2));
    }

    [Test]
    public void TrainFinetuneEvalMergeRoundTrip()
    {
        string data = Files.PathOf("mnist");
        Files.WriteMnist(data, side: 28, train: 200, test: 100);
        string model = Files.PathOf("model.safetensors"), adapter = Files.PathOf("adapter"),
            merged = Files.PathOf("merged.safetensors");
        string evalAdapter = Files.PathOf("eval-adapter.json"), evalMerged = Files.PathOf("eval-merged.json"),
            ft = Files.PathOf("ft.json");

        var train = Lora("train", "--digits", "0-7", "--epochs", "1", "--data", data, "--threads", "1", "--out", model);
        Assert.That(train.Code, Is.EqualTo(0), train.Err);
        var finetune = Lora("finetune", "--model", model, "--digits", "8,9", "--epochs", "1", "--data", data, "--out",
            adapter, "--json", ft);
        Assert.That(finetune.Code, Is.EqualTo(0), finetune.Err);
        Assert.That(File.Exists(Path.Combine(adapter, "adapter_model.safetensors")), Is.True);
        using (var doc = JsonDocument.Parse(File.ReadAllText(ft)))
            Assert.That(doc.RootElement.GetProperty("trainable_params").GetInt64(), Is.EqualTo(1064));

        var eval = Lora("eval", "--model", model, "--adapter", adapter, "--digits", "8,9", "--data", data, "--json",
            evalAdapter);
        Assert.That(eval.Code, Is.EqualTo(0), eval.Err);
        var merge = Lora("merge", "--model", model, "--adapter", adapter, "--out", merged);
        Assert.That(merge.Code, Is.EqualTo(0), merge.Err);
        Assert.That(merge.Out,
            Does.Contain("names layers.1.weight, layers.1.bias, layers.3.weight, layers.3.bias, " +
                "layers.5.weight, layers.5.bias)"));
        var evalM = Lora("eval", "--model", merged, "--digits", "8,9", "--data", data, "--json", evalMerged);
        Assert.That(evalM.Code, Is.EqualTo(0), evalM.Err);

        // The merged model predicts what the base + adapter predicts.
        using var a = JsonDocument.Parse(File.ReadAllText(evalAdapter));
        using var m = JsonDocument.Parse(File.ReadAllText(evalMerged));
        Assert.That(m.RootElement.GetProperty("confusion").ToString(),
            Is.EqualTo(a.RootElement.GetProperty("confusion").ToString()));
        Assert.That(a.RootElement.GetProperty("count").GetInt32(), Is.EqualTo(20));
    }

    [Test]
    public void SweepAdaptsOneBaseModelPerRankAndInit()
    {
        string data = Files.PathOf("mnist"), outDir = Files.PathOf("sweep"), json = Files.PathOf("sweep.json");
        Files.WriteMnist(data, side: 28, train: 100, test: 50);
        var run = Lora("sweep", "--ranks", "1,2", "--inits", "svd,pissa,default", "--epochs", "1", "--lora-epochs", "1",
            "--data", data, "--out", outDir, "--json", json);
        Assert.That(run.Code, Is.EqualTo(0), run.Err);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var ranks = doc.RootElement.GetProperty("ranks").EnumerateArray().ToList();
        var inits = doc.RootElement.GetProperty("inits").EnumerateArray().ToList();
        Assert.That(ranks.Select(r => r.GetProperty("rank").GetInt32()), Is.EqualTo(new[] { 1, 2 }));
        Assert.That(ranks.Select(r => r.GetProperty("trainable_params").GetInt64()),
            Is.EqualTo(new long[] { 256 + 10, 2 * (256 + 10) }));
        Assert.That(inits.Select(r => r.GetProperty("init").GetString()),
            Is.EqualTo(new[] { "svd", "pissa", "default" }));
        Assert.That(File.ReadAllText(Path.Combine(outDir, "sweep.md")), Does.Contain("| Pissa | 4 | 1,064 |"));
        Assert.That(File.ReadAllText(Path.Combine(outDir, "sweep.svg")), Does.StartWith("<svg"));
        Assert.That(Lora("sweep", "--ranks", "1,x").Code, Is.EqualTo(2));
    }

    [Test]
    public void OutputPathsOfTheWrongKindAreRefusedBeforeAnyWork()
    {
        string data = Files.PathOf("mnist"), dir = Files.PathOf("a-dir"), file = Files.PathOf("a-file");
        Files.WriteMnist(data, side: 28, train: 20, test: 10);
        Directory.CreateDirectory(dir);
        File.WriteAllText(file, "x");
        var train = Lora("train", "--digits", "0-7", "--epochs", "1", "--data", data, "--out", dir);
        Assert.That(train.Code, Is.EqualTo(2));
        Assert.That(train.Err, Does.Contain("--out").And.Contain("is a directory"));
        Assert.That(train.Out, Does.Not.Contain("epoch"), "refused before training");

        var eval = Lora("eval", "--model", file, "--adapter", file, "--digits", "8,9", "--data", data);
        Assert.That(eval.Code, Is.EqualTo(2));
        Assert.That(eval.Err.Trim().Split('\n'), Has.Length.EqualTo(1));
    }

    [Test]
    public void MissingModelOrAdapterIsOneLineNamingIt()
    {
        var run = Lora("eval", "--model", Files.PathOf("nope.safetensors"), "--digits", "8,9");
        Assert.That(run.Code, Is.EqualTo(2));
        Assert.That(run.Err.Trim().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(run.Err, Does.Contain("nope.safetensors"));

        string bogus = Files.PathOf("bogus.safetensors");
        File.WriteAllBytes(bogus, new byte[] { 1, 2, 3 });
        run = Lora("merge", "--model", bogus, "--adapter", Files.PathOf("none"), "--out",
            Files.PathOf("m.safetensors"));
        Assert.That(run.Code, Is.EqualTo(2));
        Assert.That(run.Err, Does.Contain("bogus.safetensors"));
    }
}
