using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Kernels;

/// <summary>
/// GELU, SiLU, LayerNorm, RMSNorm and the causal softmax split over threads (<see cref="ParallelRange"/>): on sizes
/// large enough to split, with ragged ends, one thread and two give the same bits, and both stay with the scalar twins.
/// </summary>
public class ParallelRangeTests
{
    private static float[] Random(int n, ulong seed, float scale = 3f)
    {
        var a = new float[n];
        new TorchGenerator(seed).FillUniform(a, -scale, scale);
        return a;
    }

    private static float[] Run(int threads, Action<float[]> kernel, int n)
    {
        var output = Random(n, 99, 0.5f); // backward accumulates into it
        using (ComputeThreads.Use(threads)) kernel(output);
        return output;
    }

    [TestCase(32 * 1024 + 129)]
    [TestCase(65 * 1024 + 7)]
    [TestCase(524_288)]
    public void GeluAndSiluAreBitwiseTheSameOnOneAndTwoThreads(int n)
    {
        float[] x = Random(n, 1), dy = Random(n, 2);
        foreach (var (name, kernel) in new (string, Action<float[]>)[]
        {
            ("forward", y => GeluKernel.Forward(x, y)),
            ("backward", dx => GeluKernel.Backward(x, dy, dx)),
            ("backward, overwriting", dx => GeluKernel.Backward(x, dy, dx, overwrite: true)),
            ("SiLU forward", y => SiluKernel.Forward(x, y)),
            ("SiLU backward", dx => SiluKernel.Backward(x, dy, dx)),
        })
        {
            float[] one = Run(1, kernel, n), two = Run(2, kernel, n);
            Assert.That(two.Select(BitConverter.SingleToInt32Bits),
                Is.EqualTo(one.Select(BitConverter.SingleToInt32Bits)), name);
        }
        float[] fast = new float[n], slow = new float[n];
        using (ComputeThreads.Use(2)) GeluKernel.Forward(x, fast);
        TransformerKernelsReference.GeluForward(x, slow);
        for (int i = 0; i < n; i++)
            Assert.That(fast[i], Is.EqualTo(slow[i]).Within(1e-5f + 1e-5f * Math.Abs(slow[i])), $"element {i}");
        // Overwriting equals accumulating into zeros.
        float[] written = Random(n, 20), added = new float[n];
        GeluKernel.Backward(x, dy, written, overwrite: true);
        GeluKernel.Backward(x, dy, added);
        Assert.That(written, Is.EqualTo(added));
    }

    [TestCase(9, 64)]
    [TestCase(129, 7)]
    [TestCase(700, 7)]
    [TestCase(65, 63)]
    public void CausalSoftmaxIsBitwiseTheSameOnOneAndTwoThreads(int matrices, int t)
    {
        int n = matrices * t * t;
        float[] x = Random(n, 3), dp = Random(n, 4);
        float[] p = new float[n];
        TransformerKernelsReference.CausalSoftmaxForward(x, p, matrices, t, 0.125f);
        foreach (var (name, kernel) in new (string, Action<float[]>)[]
        {
            ("forward", y => CausalSoftmaxKernel.Forward(x, y, matrices, t, 0.125f)),
            ("backward", dx => CausalSoftmaxKernel.Backward(p, dp, dx, matrices, t, 0.125f)),
            ("backward, overwriting",
                dx => CausalSoftmaxKernel.Backward(p, dp, dx, matrices, t, 0.125f, overwrite: true)),
        })
        {
            float[] one = Run(1, kernel, n), two = Run(2, kernel, n);
            Assert.That(two.Select(BitConverter.SingleToInt32Bits),
                Is.EqualTo(one.Select(BitConverter.SingleToInt32Bits)), name);
        }
        float[] fast = new float[n];
        using (ComputeThreads.Use(2)) CausalSoftmaxKernel.Forward(x, fast, matrices, t, 0.125f);
        for (int i = 0; i < n; i++) Assert.That(fast[i], Is.EqualTo(p[i]).Within(1e-6f), $"element {i}");
        // Overwriting (masked entries zeroed) equals accumulating into zeros.
        float[] written = Random(n, 21), added = new float[n];
        CausalSoftmaxKernel.Backward(p, dp, written, matrices, t, 0.125f, overwrite: true);
        CausalSoftmaxKernel.Backward(p, dp, added, matrices, t, 0.125f);
        Assert.That(written, Is.EqualTo(added));
    }

    [Test]
    public void InPlaceSoftmaxOnTwoThreadsEqualsOutOfPlace()
    {
        const int matrices = 33, t = 64;
        float[] x = Random(matrices * t * t, 5), y = new float[x.Length], inPlace = (float[])x.Clone();
        using (ComputeThreads.Use(2))
        {
            CausalSoftmaxKernel.Forward(x, y, matrices, t);
            CausalSoftmaxKernel.Forward(inPlace, inPlace, matrices, t);
        }
        Assert.That(inPlace, Is.EqualTo(y));
    }

    [TestCase(2048, 64)]
    [TestCase(129, 257)]
    [TestCase(65, 4097)]
    public void LayerNormIsBitwiseTheSameOnOneAndTwoThreads(int rows, int cols)
    {
        int n = rows * cols;
        float[] x = Random(n, 6), w = Random(cols, 7), b = Random(cols, 8), dy = Random(n, 9);
        float[] Forward(int threads)
        {
            float[] y = new float[n], mean = new float[rows], rstd = new float[rows];
            using (ComputeThreads.Use(threads)) LayerNormKernel.Forward(x, w, b, y, mean, rstd, rows, cols);
            return [.. y, .. mean, .. rstd];
        }
        float[] one = Forward(1), two = Forward(2);
        Assert.That(two.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(one.Select(BitConverter.SingleToInt32Bits)),
            "forward");
        float[] meanR = one.AsSpan(n, rows).ToArray(), rstdR = one.AsSpan(n + rows, rows).ToArray();
        float[] Backward(int threads)
        {
            float[] dx = Random(n, 10, 0.5f), dw = Random(cols, 11, 0.5f), db = Random(cols, 12, 0.5f);
            using (ComputeThreads.Use(threads))
                LayerNormKernel.Backward(x, w, meanR, rstdR, dy, dx, dw, db, rows, cols, new float[2 * cols]);
            return [.. dx, .. dw, .. db];
        }
        Assert.That(Backward(2).Select(BitConverter.SingleToInt32Bits),
            Is.EqualTo(Backward(1).Select(BitConverter.SingleToInt32Bits)), "backward");
    }

    [TestCase(2048, 64)]
    [TestCase(129, 257)]
    [TestCase(65, 4097)]
    public void RmsNormIsBitwiseTheSameOnOneAndTwoThreads(int rows, int cols)
    {
        int n = rows * cols;
        float[] x = Random(n, 13), w = Random(cols, 14), dy = Random(n, 15);
        float[] Forward(int threads)
        {
            float[] y = new float[n], rstd = new float[rows];
            using (ComputeThreads.Use(threads)) RmsNormKernel.Forward(x, w, y, rstd, rows, cols, 1e-6f);
            return [.. y, .. rstd];
        }
        float[] one = Forward(1), two = Forward(2);
        Assert.That(two.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(one.Select(BitConverter.SingleToInt32Bits)),
            "forward");
        float[] rstdR = one.AsSpan(n, rows).ToArray();
        float[] Backward(int threads)
        {
            float[] dx = Random(n, 16, 0.5f), dw = Random(cols, 17, 0.5f);
            using (ComputeThreads.Use(threads))
                RmsNormKernel.Backward(x, w, rstdR, dy, dx, dw, rows, cols, new float[2 * cols]);
            return [.. dx, .. dw];
        }
        Assert.That(Backward(2).Select(BitConverter.SingleToInt32Bits),
            Is.EqualTo(Backward(1).Select(BitConverter.SingleToInt32Bits)), "backward");
    }

    [TestCase(1)]
    [TestCase(65 * 1024 + 7)]
    public void AddAndCopyOnTwoThreadsEqualTheSerialOnes(int n)
    {
        float[] a = Random(n, 30), b = Random(n, 31), serial = new float[n], parallel = new float[n],
            copy = new float[n];
        System.Numerics.Tensors.TensorPrimitives.Add(a, b, serial);
        using (ComputeThreads.Use(2))
        {
            ParallelRange.Add(a, b, parallel);
            ParallelRange.Copy(a, copy);
        }
        Assert.That(parallel, Is.EqualTo(serial));
        Assert.That(copy, Is.EqualTo(a));
    }
}

