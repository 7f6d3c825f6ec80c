using System.Runtime.Intrinsics;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Kernels;

/// <summary>
/// <see cref="DepthSplit"/>: a small C with a long shared dimension, split over threads by blocks of
/// <see cref="Gemm.KC"/> of k, must give the bits of the one-thread product: part 0's leading blocks straight into C,
/// the others' blocks each into a slot, added in increasing order.
/// </summary>
public class DepthSplitTests
{
    /// <summary>The GPT's weight gradients (2,048 tokens), k of exactly four blocks, a partial last block (1,025,
    /// 1,031, 1,793, 4,103), rows and columns off the tiles (17, 33, 63, 65, 127, 129), every transpose, on two, three
    /// and four threads (parts of unequal blocks): the packed path's bits (on AVX-512; alpha 0.75; beta 0 with C full
    /// of NaN, 1 and 0.3), and on any machine the one-thread product's (padded leading dimensions, NaN, ±∞ and −0
    /// among the operands).</summary>
    [TestCase(64, 64, 2048), TestCase(96, 64, 2048), TestCase(256, 64, 2048), TestCase(64, 256, 2048),
     TestCase(17, 33, 1024), TestCase(65, 63, 1025), TestCase(127, 129, 1031), TestCase(63, 65, 1793),
     TestCase(33, 17, 4103)]
    public void ASmallProductOverALongDepthGivesTheOneThreadBits(int m, int n, int k)
    {
        int saved = ComputeThreads.Max;
        try
        {
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    foreach (int threads in new[] { 2, 3, 4 })
                    {
                        Assert.That(DepthSplit.Applies(m, n, k, threads), Is.True, $"{m}×{k}·{k}×{n} is split by k");
                        ComputeThreads.Max = threads;
                        if (Vector512.IsHardwareAccelerated)
                            GemmBitsTests.Compare(MicroKernelKind.Vector512x8x32, m, n, k, ta, tb, null,
                                $"{threads} threads");
                        // On any machine (the 6×16 and scalar tiles too), with NaN, ±∞ and −0 among the operands.
                        GemmBitsTests.Compare(null, m, n, k, ta, tb, null, $"{threads} threads", specials: true);
                    }
        }
        finally { ComputeThreads.Max = saved; }
    }

    /// <summary>The split is for small outputs over a long depth only: the blog MLP's products (k ≤ 784, also at
    /// batches of 17–32, and k of four partial blocks), a C above <see cref="DepthSplit.MaxOutputs"/> or wider than
    /// <see cref="DepthSplit.MaxSide"/>, one thread, and a depth whose slots would pass 4 MB keep the split of
    /// C.</summary>
    [TestCase(64, 512, 784, 2), TestCase(512, 784, 64, 2), TestCase(64, 784, 512, 2), TestCase(64, 256, 512, 2),
     TestCase(64, 10, 256, 2), TestCase(64, 64, 768, 2), TestCase(32, 512, 784, 2), TestCase(17, 512, 784, 2),
     TestCase(64, 64, 784, 2), TestCase(64, 64, 1023, 2), TestCase(32, 512, 2048, 2), TestCase(129, 128, 2048, 2),
     TestCase(64, 64, 2048, 1), TestCase(128, 128, 1 << 20, 2)]
    public void OtherProductsKeepTheSplitOfC(int m, int n, int k, int threads) =>
        Assert.That(DepthSplit.Applies(m, n, k, threads), Is.False);

    /// <summary>The bias and ReLU of the epilogue apply once, to the summed C: on two threads the bits of
    /// one.</summary>
    [Test]
    public unsafe void TheEpilogueAppliesToTheSummedProduct()
    {
        const int m = 64, n = 64, k = 2048;
        var g = new TorchGenerator(11);
        float[] a = GemmTests.Rand(g, m * k), b = GemmTests.Rand(g, k * n), bias = GemmTests.Rand(g, n);
        float[] one = new float[m * n], two = new float[m * n];
        int saved = ComputeThreads.Max;
        try
        {
            fixed (float* pBias = bias)
            {
                var epilogue = new GemmEpilogue(pBias, relu: true);
                ComputeThreads.Max = 1;
                Gemm.MultiplyWithEpilogue(true, false, m, n, k, 1f, a, m, b, n, 0f, one, n, epilogue);
                ComputeThreads.Max = 2;
                Assert.That(DepthSplit.Applies(m, n, k, 2), Is.True);
                Gemm.MultiplyWithEpilogue(true, false, m, n, k, 1f, a, m, b, n, 0f, two, n, epilogue);
            }
        }
        finally { ComputeThreads.Max = saved; }
        Assert.That(one.Count(x => x == 0f), Is.GreaterThan(m * n / 4), "the ReLU clipped a share of C");
        for (int i = 0; i < one.Length; i++)
            Assert.That(BitConverter.SingleToInt32Bits(two[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(one[i])),
                $"C[{i / n},{i % n}]");
    }
}
