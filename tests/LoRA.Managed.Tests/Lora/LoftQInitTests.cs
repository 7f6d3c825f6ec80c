using System.Text;
using LoRA.Managed.IO;
using LoRA.Managed.Kernels;
using LoRA.Managed.Lora;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Lora;

/// <summary>
/// LoftQ's initialisation (PEFT's <c>init_lora_weights="loftq"</c>, 4 bits): the base becomes its NF4 quantisation
/// and the factors the best rank-r fit of what quantising lost.
/// </summary>
public class LoftQInitTests
{
    private static double Frobenius(float[] x)
    {
        double s = 0;
        foreach (float v in x) s += (double)v * v;
        return Math.Sqrt(s);
    }

    [Test]
    public void AWeightThatNf4HoldsExactlyNeedsNoCorrection()
    {
        // Worked by hand: one block of 64 values, each twice an NF4 level (so absmax = 2, level ±1 included): the
        // round trip gives W back exactly, nothing is lost, and the rank-2 fit of zero is zero.
        var values = new float[64];
        for (int i = 0; i < 64; i++) values[i] = 2f * Nf4.Levels[i % 16];
        var w = new Tensor((float[])values.Clone(), 4, 16);
        Tensor a = new(2, 16), b = new(4, 2);
        a.Data.Fill(9f);
        b.Data.Fill(9f);
        LoraInitializer.Apply(LoraInit.LoftQ, a, b, w, scale: 1.0, new TorchGenerator(0));
        Assert.That(w.Data.ToArray(), Is.EqualTo(values));
        Assert.That(a.Data.ToArray(), Is.All.EqualTo(0f));
        Assert.That(b.Data.ToArray(), Is.All.EqualTo(0f));
    }

    [TestCase(1)]
    [TestCase(3)]
    public void TheQuantisedBasePlusTheAdapterIsCloserToWThanTheQuantisedBaseAlone(int iterations)
    {
        const int rows = 8, cols = 64, rank = 4;
        var g = new TorchGenerator(3);
        float[] original = new float[rows * cols];
        g.FillNormal(original, 0f, 1f);
        var w = new Tensor((float[])original.Clone(), rows, cols);
        Tensor a = new(rank, cols), b = new(rows, rank);
        LoraInitializer.Apply(LoraInit.LoftQ, a, b, w, scale: 1.0, new TorchGenerator(0), loftQIterations: iterations);

        float[] nf4Only = new float[original.Length];
        LoftQInit.RoundTripNf4(original, nf4Only);
        if (iterations == 1) Assert.That(w.Data.ToArray(), Is.EqualTo(nf4Only), "one iteration quantises W itself");
        var ba = new float[original.Length];
        Gemm.Multiply(false, false, rows, cols, rank, 1f, b.Data, rank, a.Data, cols, 0f, ba, cols);
        float[] withAdapter = original.Select((v, i) => v - (w.Data[i] + ba[i])).ToArray();
        float[] withoutAdapter = original.Select((v, i) => v - nf4Only[i]).ToArray();
        Assert.That(Frobenius(withAdapter), Is.LessThan(0.95 * Frobenius(withoutAdapter)));
    }

    [Test]
    public void LoftQConfigRoundTripsAndOtherBitsAreRefusedByName()
    {
        var config = new LoraConfig { Rank = 2, Init = LoraInit.LoftQ, LoftQIterations = 3,
            TargetModules = ["q_proj"] };
        string json = AdapterConfigFile.ToJson(config);
        Assert.That(json, Does.Contain("\"init_lora_weights\": \"loftq\"").And.Contain("\"loftq_iter\": 3"));
        var back = AdapterConfigFile.Parse(Encoding.UTF8.GetBytes(json), "adapter_config.json");
        Assert.That((back.Init, back.LoftQIterations, back.LoftQBits), Is.EqualTo((LoraInit.LoftQ, 3, 4)));

        foreach (string bad in new[]
        {
            "{\"peft_type\":\"LORA\",\"r\":2,\"target_modules\":[\"q\"],\"init_lora_weights\":\"loftq\"," +
                "\"loftq_config\":{\"loftq_bits\":2}}",
            "{\"peft_type\":\"LORA\",\"r\":2,\"target_modules\":[\"q\"],\"init_lora_weights\":\"loftq\"}",
            "{\"peft_type\":\"LORA\",\"r\":2,\"target_modules\":[\"q\"],\"loftq_config\":{\"loftq_bits\":4}}",
        })
        {
            var ex = Assert.Throws<InvalidDataFormatException>(() =>
                AdapterConfigFile.Parse(Encoding.UTF8.GetBytes(bad), "adapter_config.json"));
            Assert.That(ex!.Message, Does.Contain("loftq_config"), bad);
        }
    }
}
