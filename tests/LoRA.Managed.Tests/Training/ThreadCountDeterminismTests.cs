using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Training;

/// <summary>
/// The determinism invariant at the level a user sees it: the blog's MLP trained with Adam, then a LoRA adapter on
/// it, give the same bits on 1, 2 and 3 threads. Each kernel's own test holds its split to the serial order; this
/// one catches a kernel or op that is split differently and never tested so (the products here are large enough
/// that GEMM and Adam do split).
/// </summary>
public class ThreadCountDeterminismTests
{
    private static float[] Train(int threads)
    {
        using var scope = ComputeThreads.Use(threads);
        var gen = new TorchGenerator(seed: 0);
        var model = Mlp.Blog(gen);
        Tensor x = new TorchGenerator(1).Rand(64, 784);
        int[] y = Enumerable.Range(0, 64).Select(i => i % 10).ToArray();
        var adam = new Adam(model.Parameters(), 1e-3);
        for (int step = 0; step < 4; step++)
        {
            adam.ZeroGrad();
            Functional.CrossEntropy(model.Forward(x), y).Backward();
            adam.Step();
        }
        var peft = LoraModel.GetPeftModel(model, new LoraConfig
        {
            Rank = 4, Alpha = 1, Scaling = LoraScaling.Alpha, Init = LoraInit.Svd,
            TargetModules = ["layers.3", "layers.5"],
        }, gen);
        var loraAdam = new Adam(peft.TrainableParameters(), 5e-3);
        for (int step = 0; step < 4; step++)
        {
            loraAdam.ZeroGrad();
            Functional.CrossEntropy(peft.Forward(x), y).Backward();
            loraAdam.Step();
        }
        return peft.Parameters().SelectMany(p => p.Data.ToArray()).ToArray();
    }

    [Test]
    public void BlogMlpAndItsAdapterTrainToTheSameBitsOnAnyThreadCount()
    {
        float[] one = Train(1);
        foreach (int threads in new[] { 2, 3 })
        {
            float[] other = Train(threads);
            Assert.That(other, Has.Length.EqualTo(one.Length));
            int firstDiff = Enumerable.Range(0, one.Length)
                .FirstOrDefault(i => BitConverter.SingleToInt32Bits(one[i])
                    != BitConverter.SingleToInt32Bits(other[i]), -1);
            Assert.That(firstDiff, Is.EqualTo(-1),
                $"{threads} threads: parameter element {firstDiff} differs from 1 thread");
        }
    }
}
