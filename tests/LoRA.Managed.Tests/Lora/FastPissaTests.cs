using System.Text;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Tensors;
using MathNet.Numerics.LinearAlgebra;

namespace LoRA.Managed.Tests.Lora;

/// <summary>
/// PEFT's fast PiSSA (<c>init_lora_weights="pissa_niter_K"</c>): the principal subspace from a randomized SVD. Exact
/// on a matrix of rank at most r, close to the full SVD's factors on a decaying spectrum, the residual always
/// cancelling the adapter, and the same residual rebuilt when the adapter is loaded.
/// </summary>
public class FastPissaTests
{
    private static Tensor Product(Tensor a, Tensor b, double scale) =>
        LowRank.ToTensor(scale * (LowRank.ToMatrix(b) * LowRank.ToMatrix(a)));

    private static double MaxAbs(Tensor x, Tensor y)
    {
        double m = 0;
        for (int i = 0; i < x.Count; i++) m = Math.Max(m, Math.Abs(x.Data[i] - y.Data[i]));
        return m;
    }

    [Test]
    public void ARankOneMatrixIsCapturedWhole()
    {
        // Worked by hand: W = [1 2; 2 4; 3 6] = (1, 2, 3)ᵀ·(1, 2) has rank 1, so one direction holds all of it: the
        // sketch W·ω spans (1, 2, 3) whatever ω is, scale·B·A = W and the residual is zero.
        var w = Tensor.FromRows([[1, 2], [2, 4], [3, 6]]);
        var a = new Tensor(1, 2);
        var b = new Tensor(3, 1);
        LoraInitializer.Apply(LoraInit.Pissa, a, b, w, 2.0, new TorchGenerator(5), pissaIterations: 2);
        var expected = Tensor.FromRows([[1, 2], [2, 4], [3, 6]]);
        Assert.That(MaxAbs(Product(a, b, 2.0), expected), Is.LessThan(1e-5));
        Assert.That(w.Data.ToArray(), Is.All.EqualTo(0f).Within(1e-5f));
    }

    [Test]
    public void OnADecayingSpectrumItMatchesTheFullSvd()
    {
        // W = U·diag(8, 4, 2, 0.1, 0.01, 0.001)·Vᵀ with random orthonormal U (9×6) and V (6×6). Without
        // oversampling (PEFT calls svd_lowrank with q = r) each power iteration shrinks the error by (σ₄/σ₃)² = 1/400;
        // with σ₄/σ₃ = 1/2 instead, four iterations left 3e-3, as that rate predicts (0.5⁹ ≈ 2e-3).
        var g = new TorchGenerator(7);
        Matrix<double> Orth(int rows, int cols)
        {
            var r = new float[rows * cols];
            g.FillNormal(r, 0f, 1f);
            return Matrix<double>.Build.Dense(rows, cols, (i, j) => r[i * cols + j]).QR().Q.SubMatrix(0, rows, 0, cols);
        }
        var s = Matrix<double>.Build.DenseOfDiagonalArray([8, 4, 2, 0.1, 0.01, 0.001]);
        Tensor W() => LowRank.ToTensor(Orth(9, 6) * s * Orth(6, 6).Transpose());
        Tensor original = W();
        Tensor exactW = original.Clone(), fastW = original.Clone();
        Tensor exactA = new(3, 6), exactB = new(9, 3), fastA = new(3, 6), fastB = new(9, 3);
        LoraInitializer.Apply(LoraInit.Pissa, exactA, exactB, exactW, 0.5, new TorchGenerator(1));
        LoraInitializer.Apply(LoraInit.Pissa, fastA, fastB, fastW, 0.5, new TorchGenerator(1), pissaIterations: 4);
        // Singular vectors are defined up to sign, so compare the products W_r, not the factors.
        Assert.That(MaxAbs(Product(fastA, fastB, 0.5), Product(exactA, exactB, 0.5)), Is.LessThan(1e-4));
        Assert.That(MaxAbs(fastW, exactW), Is.LessThan(1e-4));
        // Whatever the subspace, residual + scale·B·A is the original weight.
        var rebuilt = LowRank.ToTensor(LowRank.ToMatrix(fastW) + LowRank.ToMatrix(Product(fastA, fastB, 0.5)));
        Assert.That(MaxAbs(rebuilt, original), Is.LessThan(1e-5));
    }

    [Test]
    public void PissaNiterRoundTripsAndTheLoadedModelIsTheTrainedOne()
    {
        var config = new LoraConfig
        {
            Rank = 4, Alpha = 8, Init = LoraInit.Pissa, PissaIterations = 3, TargetModules = ["layers.3", "layers.5"],
        };
        PeftModel model = LoraModel.GetPeftModel(Mlp.Blog(new TorchGenerator(0)), config, new TorchGenerator(9));
        string json = AdapterConfigFile.ToJson(config);
        Assert.That(json, Does.Contain("\"init_lora_weights\": \"pissa_niter_3\""));
        var back = AdapterConfigFile.Parse(Encoding.UTF8.GetBytes(json), "adapter_config.json");
        Assert.That((back.Init, back.PissaIterations), Is.EqualTo((LoraInit.Pissa, (int?)3)));

        string dir = Directory.CreateTempSubdirectory("fast-pissa-").FullName;
        try
        {
            model.SaveAdapter(dir);
            var x = new TorchGenerator(4).Rand(3, 784);
            Tensor expected = model.Forward(x);
            // Loading rebuilds the residual from the original base with the same fixed-seed sketch.
            var loaded = PeftModel.FromPretrained(Mlp.Blog(new TorchGenerator(0)), dir);
            var want = model.StateDict();
            foreach (var (name, t) in loaded.StateDict()) Assert.That(t.Array, Is.EqualTo(want[name].Array), name);
            Assert.That(loaded.Forward(x).Data.ToArray(), Is.EqualTo(expected.Data.ToArray()));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Test]
    public void IterationsWithoutPissaAreRefused() =>
        Assert.Throws<ArgumentException>(() => new LoraConfig { TargetModules = ["x"],
            PissaIterations = 2 }.Validate());
}
