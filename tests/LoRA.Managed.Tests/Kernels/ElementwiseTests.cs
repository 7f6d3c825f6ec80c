using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Kernels;

/// <summary>
/// Each elementwise kernel against its scalar twin over every length 0..256 (so every SIMD body/tail
/// split is exercised), in the habit of .NET's TensorPrimitives tests.
/// </summary>
public class ElementwiseTests
{
    private static IEnumerable<int> Lengths() => Enumerable.Range(0, 257);

    private static float[] Rand(int n, int seed, float lo = -3f, float hi = 3f)
    {
        var x = new float[n];
        new TorchGenerator((ulong)seed).FillUniform(x, lo, hi);
        return x;
    }

    [Test]
    public void ReluForwardMatchesReference([ValueSource(nameof(Lengths))] int n)
    {
        float[] x = Rand(n, n), y = new float[n], r = new float[n];
        Relu.Forward(x, y);
        ElementwiseReference.ReluForward(x, r);
        Assert.That(y, Is.EqualTo(r));
    }

    [Test]
    public void ReluBackwardMatchesReferenceAndAccumulates([ValueSource(nameof(Lengths))] int n)
    {
        float[] y = Rand(n, n + 1), dy = Rand(n, n + 2), dx = Rand(n, n + 3);
        float[] r = (float[])dx.Clone();
        Relu.Backward(y, dy, dx);
        ElementwiseReference.ReluBackward(y, dy, r);
        Assert.That(dx, Is.EqualTo(r));
    }

    [Test]
    public void ReluBackwardOverwritingGivesTheBitsOfAddingIntoZeros([ValueSource(nameof(Lengths))] int n)
    {
        float[] y = Rand(n, n + 1), dy = Rand(n, n + 2), dx = Rand(n, n + 3), zeros = new float[n];
        if (n > 0) { y[0] = 1f; dy[0] = -0f; } // adding a −0 to a zeroed dx gives +0, and so must the overwrite
        ElementwiseReference.ReluBackward(y, dy, zeros);
        Relu.Backward(y, dy, dx, overwrite: true);
        Assert.That(dx.Select(BitConverter.SingleToInt32Bits),
            Is.EqualTo(zeros.Select(BitConverter.SingleToInt32Bits)));
    }

    [TestCase(1, 1)] [TestCase(7, 3)] [TestCase(63, 65)] [TestCase(65, 129)] [TestCase(3, 10)]
    public void BiasAndColumnSumsMatchReference(int rows, int cols)
    {
        float[] y = Rand(rows * cols, 1), bias = Rand(cols, 2);
        float[] r = (float[])y.Clone();
        RowOps.AddBias(y, bias, rows, cols);
        ElementwiseReference.AddBias(r, bias, rows, cols);
        Assert.That(y, Is.EqualTo(r));

        float[] s = Rand(cols, 3), sr = (float[])s.Clone();
        RowOps.AccumulateColumnSums(y, rows, cols, s);
        ElementwiseReference.AccumulateColumnSums(y, rows, cols, sr);
        for (int j = 0; j < cols; j++) Assert.That(s[j], Is.EqualTo(sr[j]).Within(1e-4f * rows));
    }

    // Large enough to split over two threads (2048×64 and 2048×256 are the GPT step's): the bias add splits rows,
    // the column sums 16-column blocks, and both keep every sum's order, so the bits are the reference's.
    [TestCase(1, 1)] [TestCase(7, 63)] [TestCase(65, 129)] [TestCase(2048, 64)] [TestCase(2048, 256)]
    [TestCase(1000, 65)] [TestCase(4096, 17)] [TestCase(129, 1000)]
    public void BiasAndColumnSumsAreBitwiseTheReferenceOnOneAndTwoThreads(int rows, int cols)
    {
        foreach (int threads in new[] { 1, 2 })
        {
            using var _ = ComputeThreads.Use(threads);
            float[] y = Rand(rows * cols, 11), bias = Rand(cols, 12);
            float[] r = (float[])y.Clone();
            RowOps.AddBias(y, bias, rows, cols);
            ElementwiseReference.AddBias(r, bias, rows, cols);
            Assert.That(y, Is.EqualTo(r), $"bias add, {threads} thread(s)");

            float[] s = Rand(cols, 13), sr = (float[])s.Clone();
            RowOps.AccumulateColumnSums(y, rows, cols, s);
            ElementwiseReference.AccumulateColumnSums(y, rows, cols, sr);
            Assert.That(s, Is.EqualTo(sr), $"column sums, {threads} thread(s)");
        }
    }

    [TestCase(1, 1)] [TestCase(7, 10)] [TestCase(63, 65)] [TestCase(2, 129)] [TestCase(64, 10)]
    public void LogSoftmaxMatchesReferenceEvenForHugeLogits(int rows, int cols)
    {
        foreach (float scale in new[] { 1f, 300f, 5000f })
        {
            float[] x = Rand(rows * cols, rows * cols, -scale, scale), y = new float[x.Length], r = new float[x.Length];
            LogSoftmax.Rows(x, y, rows, cols);
            ElementwiseReference.LogSoftmaxRows(x, r, rows, cols);
            for (int i = 0; i < y.Length; i++)
            {
                Assert.That(float.IsFinite(y[i]), Is.True, $"scale {scale} index {i}");
                Assert.That(y[i], Is.EqualTo(r[i]).Within(2e-6f * Math.Max(1f, Math.Abs(r[i]))),
                    $"scale {scale} index {i}");
            }
        }
    }

    [TestCase(1, 10)] [TestCase(64, 10)] [TestCase(7, 129)]
    public void CrossEntropyMatchesReference(int rows, int classes)
    {
        float[] z = Rand(rows * classes, 5, -200f, 200f);
        int[] labels = Enumerable.Range(0, rows).Select(i => (i * 7) % classes).ToArray();
        float[] d = new float[z.Length], dr = new float[z.Length];
        float loss = CrossEntropyKernel.ForwardBackward(z, labels, classes, d, 1f);
        float lossRef = ElementwiseReference.CrossEntropy(z, labels, classes, dr);
        Assert.That(loss, Is.EqualTo(lossRef).Within(1e-4f * Math.Max(1f, lossRef)));
        for (int i = 0; i < d.Length; i++) Assert.That(d[i], Is.EqualTo(dr[i]).Within(1e-6f));
    }

    // 2048×96 is the GPT step's loss, large enough to split over two threads; every 5th row is ignored. The loss is
    // summed in row order after the split, so two threads give one thread's bits, loss and gradient.
    [TestCase(2048, 96)] [TestCase(1000, 65)] [TestCase(7, 129)] [TestCase(1, 1)]
    public void CrossEntropyGivesTheSameBitsOnOneAndTwoThreads(int rows, int classes)
    {
        float[] z = Rand(rows * classes, 21, -20f, 20f);
        int[] labels = Enumerable.Range(0, rows)
            .Select(i => i % 5 == 4 && rows > 1 ? CrossEntropyKernel.IgnoreIndex : (i * 7) % classes).ToArray();
        float[] d1 = new float[z.Length], d2 = new float[z.Length];
        float loss1, loss2;
        using (ComputeThreads.Use(1)) loss1 = CrossEntropyKernel.ForwardBackward(z, labels, classes, d1, 1f);
        using (ComputeThreads.Use(2)) loss2 = CrossEntropyKernel.ForwardBackward(z, labels, classes, d2, 1f);
        Assert.That(loss2, Is.EqualTo(loss1));
        Assert.That(d2, Is.EqualTo(d1));
        for (int i = 0; i < rows; i++)
            if (labels[i] == CrossEntropyKernel.IgnoreIndex)
                Assert.That(d1.AsSpan(i * classes, classes).ToArray(), Is.All.EqualTo(0f), $"ignored row {i}");
        Assert.That(float.IsFinite(loss1) && loss1 >= 0f, $"loss {loss1}");
    }

    // The in-place form a language model's head uses (the gradient written over the logits) against NllSum with a
    // separate gradient buffer, bit for bit: loss and gradient, ignored rows, no gradient wanted, one and two threads.
    [TestCase(1, 1)] [TestCase(7, 129)] [TestCase(63, 65)] [TestCase(65, 7)] [TestCase(129, 1000)]
    [TestCase(300, 600)]
    public void CrossEntropyInPlaceGivesNllSumsBits(int rows, int classes)
    {
        float[] z = Rand(rows * classes, 23, -20f, 20f);
        int[] labels = Enumerable.Range(0, rows)
            .Select(i => i % 5 == 4 ? CrossEntropyKernel.IgnoreIndex : (i * 7) % classes).ToArray();
        foreach (int threads in new[] { 1, 2 })
            foreach (float gradPerRow in new[] { 0.37f, 0f })
            {
                using var _ = ComputeThreads.Use(threads);
                float[] d = new float[z.Length], inPlace = (float[])z.Clone();
                double expected = CrossEntropyKernel.NllSum(z, labels, classes, d, gradPerRow);
                double got = CrossEntropyKernel.NllSumInPlace(inPlace, labels, classes, gradPerRow);
                Assert.That(got, Is.EqualTo(expected), $"loss, {threads} thread(s), gradPerRow {gradPerRow}");
                if (gradPerRow == 0f) continue;   // only the loss is wanted: the span's contents are unspecified
                for (int i = 0; i < d.Length; i++)
                    Assert.That(BitConverter.SingleToInt32Bits(inPlace[i]),
                        Is.EqualTo(BitConverter.SingleToInt32Bits(d[i])),
                        $"gradient [{i / classes}, {i % classes}], {threads} thread(s)");
            }
        Assert.Throws<ArgumentException>(() => CrossEntropyKernel.NllSumInPlace(new float[5], [0, 1], 3, 1f));
    }

    [Test]
    public void CrossEntropyRefusesLabelsOutOfRange()
    {
        var ex = Assert.Throws<ArgumentException>(() => CrossEntropyKernel.ForwardBackward(new float[6], new[] { 0, 3 },
            3, new float[6], 1f));
        Assert.That(ex!.Message, Does.Contain("label 3 at row 1"));
    }

    [Test]
    public void AdamUpdateMatchesReferenceBitForBit([ValueSource(nameof(Lengths))] int n)
    {
        float[] p = Rand(n, 1), g = Rand(n, 2), m = Rand(n, 3, 0f, 0.1f), v = Rand(n, 4, 0f, 0.1f);
        float[] p2 = (float[])p.Clone(), m2 = (float[])m.Clone(), v2 = (float[])v.Clone();
        AdamUpdate.Step(p, g, m, v, 0.01f, 0.1f, 0.999f, 0.001f, 0.77f, 1e-8f, 0.1f, 0.99f);
        ElementwiseReference.AdamStep(p2, g, m2, v2, 0.01f, 0.1f, 0.999f, 0.001f, 0.77f, 1e-8f, 0.1f, 0.99f);
        Assert.That(p, Is.EqualTo(p2));
        Assert.That(m, Is.EqualTo(m2));
        Assert.That(v, Is.EqualTo(v2));
    }

    /// <summary>
    /// The multi-tensor step (one job for all of an optimiser's parameters) against the reference tensor by tensor:
    /// tensors from 1 to 401,408 elements (the blog MLP's), with their own decay factors, on 1, 2 and 3 threads, and a
    /// few subnormal moments with zero gradients (Adam's exact slow lanes).
    /// </summary>
    [Test]
    public void AdamMultiTensorStepIsBitwiseTheReferencePerTensorOnAnyThreadCount()
    {
        int[] sizes = [401_408, 512, 131_072, 10, 1, 17, 2_560, 65, 100_003, 0, 15, 16];
        foreach (int threads in new[] { 1, 2, 3 })
        {
            var tensors = new AdamUpdate.Tensors[sizes.Length];
            var expected = new (float[] P, float[] M, float[] V)[sizes.Length];
            for (int t = 0; t < sizes.Length; t++)
            {
                int n = sizes[t];
                float[] p = Rand(n, 100 + t), g = Rand(n, 200 + t), m = Rand(n, 300 + t, 0f, 0.1f);
                float[] v = Rand(n, 400 + t, 0f, 0.1f);
                for (int i = 0; i < n; i += 7) { m[i] = 3e-39f * (i % 3 == 0 ? -1 : 1); g[i] = 0f; }
                float decay = t % 2 == 0 ? 0.999f : 1f;
                float[] pr = (float[])p.Clone(), mr = (float[])m.Clone(), vr = (float[])v.Clone();
                ElementwiseReference.AdamStep(pr, g, mr, vr, 0.01f, 0.1f, 0.999f, 0.001f, 0.77f, 1e-8f, 0.05f, decay);
                expected[t] = (pr, mr, vr);
                tensors[t] = new AdamUpdate.Tensors(p, g, m, v, decay);
            }
            using (ComputeThreads.Use(threads))
                AdamUpdate.StepMany(tensors, tensors.Length, 0.01f, 0.1f, 0.999f, 0.001f, 0.77f, 1e-8f, 0.05f);
            static IEnumerable<int> Bits(float[] x) => x.Select(BitConverter.SingleToInt32Bits);
            for (int t = 0; t < sizes.Length; t++)
            {
                Assert.That(Bits(tensors[t].Param), Is.EqualTo(Bits(expected[t].P)), $"θ, tensor {t}, {threads} thr.");
                Assert.That(Bits(tensors[t].M), Is.EqualTo(Bits(expected[t].M)), $"m of tensor {t}, {threads} thr.");
                Assert.That(Bits(tensors[t].V), Is.EqualTo(Bits(expected[t].V)), $"v of tensor {t}, {threads} thr.");
            }
        }
    }

    [Test]
    public void AdamMultiTensorStepNamesTheTensorWhoseLengthsDiffer()
    {
        var bad = new AdamUpdate.Tensors(new float[4], new float[4], new float[3], new float[4], 1f);
        var ex = Assert.Throws<ArgumentException>(() =>
            AdamUpdate.StepMany([bad], 1, 0.01f, 0.1f, 0.999f, 0.001f, 0.77f, 1e-8f, 0f));
        Assert.That(ex!.Message, Does.Contain("tensor 0's lengths differ").And.Contain("m 3"));
    }

    /// <summary>Long spans are split over threads; every split must give the serial reference's exact bits.</summary>
    [TestCase(AdamUpdate.ParallelThreshold), TestCase(100_003), TestCase(401_408)]
    public void AdamUpdateOnLongSpansIsBitwiseTheSameForAnyThreadCount(int n)
    {
        float[] g = Rand(n, 2);
        float[] p2 = Rand(n, 1), m2 = Rand(n, 3, 0f, 0.1f), v2 = Rand(n, 4, 0f, 0.1f);
        ElementwiseReference.AdamStep(p2, g, m2, v2, 0.01f, 0.1f, 0.999f, 0.001f, 0.77f, 1e-8f, 0.1f, 0.99f);
        int saved = ComputeThreads.Max;
        try
        {
            foreach (int threads in new[] { 1, 2, 3 })
            {
                ComputeThreads.Max = threads;
                float[] p = Rand(n, 1), m = Rand(n, 3, 0f, 0.1f), v = Rand(n, 4, 0f, 0.1f);
                AdamUpdate.Step(p, g, m, v, 0.01f, 0.1f, 0.999f, 0.001f, 0.77f, 1e-8f, 0.1f, 0.99f);
                Assert.That(p, Is.EqualTo(p2), $"θ with {threads} threads");
                Assert.That(m, Is.EqualTo(m2), $"m with {threads} threads");
                Assert.That(v, Is.EqualTo(v2), $"v with {threads} threads");
            }
        }
        finally { ComputeThreads.Max = saved; }
    }

    /// <summary>
    /// First moments that decay through the subnormal range (zero gradients) take an integer path on AVX-512;
    /// it must give the scalar reference's exact bits, mixed in one vector with ordinary lanes, tiny θ, zero v,
    /// negative m, Adam's L2 decay and AdamW's decoupled decay, over many steps.
    /// </summary>
    [TestCase(0.1f, 4), TestCase(0.25f, 2), TestCase(0.5f, 1), TestCase(0.01f, 50), TestCase(1f, 0),
     TestCase(0.3f, 1), TestCase(0.2f, 2)]
    public void ARestingSubnormalMomentIsTheLargestThatAZeroGradientLeavesAlone(float oneMinusBeta1, int expected)
    {
        int resting = SubnormalMoments.RestingMagnitude(oneMinusBeta1);
        Assert.That(resting, Is.EqualTo(expected));
        // The float arithmetic itself agrees: m + (1−β₁)·(0 − m) keeps A·2⁻¹⁴⁹ for A = resting, moves A + 1.
        float Decayed(int a)
        {
            float m = BitConverter.Int32BitsToSingle(a);
            return m + oneMinusBeta1 * (0f - m);
        }
        if (resting > 0) Assert.That(BitConverter.SingleToInt32Bits(Decayed(resting)), Is.EqualTo(resting));
        Assert.That(BitConverter.SingleToInt32Bits(Decayed(resting + 1)), Is.LessThan(resting + 1));
    }

    // 1 − β₁ of 0.1 (PyTorch's default, moments rest at 4 ulps), 0.25 (at 2), 0.01 (at 50) and 0.5 (at 1).
    [TestCase(0f, 1f, 0.1f), TestCase(0.1f, 1f, 0.1f), TestCase(0f, 0.999f, 0.1f), TestCase(0f, 1f, 0.25f),
     TestCase(0f, 1f, 0.01f), TestCase(0f, 0.999f, 0.5f)]
    public void AdamUpdateWithSubnormalMomentsMatchesReferenceBitForBit(float l2, float decay, float oneMinusBeta1)
    {
        const int n = 16 * 40 * 10 + 5; // ten chunks: most of them dense, so both of Adam's loops meet every case
        var rng = new Random(1234);
        float[] p = new float[n], g = new float[n], m = new float[n], v = new float[n];
        for (int i = 0; i < n; i++)
        {
            p[i] = (i % 13) switch { 0 => 1e-30f, 1 => 0f, 2 => -3e-26f, _ => (float)(rng.NextDouble() * 2 - 1) };
            g[i] = i % 5 == 0 ? (float)(rng.NextDouble() - 0.5) * 1e-3f : (i % 7 == 0 ? -0f : 0f);
            int kind = i % 6;
            m[i] = kind switch
            {
                0 => BitConverter.Int32BitsToSingle(1 + rng.Next(0x7F_FFFF)),            // subnormal
                1 => -BitConverter.Int32BitsToSingle(1 + rng.Next(0x7F_FFFF)),           // negative subnormal
                2 => BitConverter.Int32BitsToSingle(rng.Next(1, 16)),                      // a few units of 2⁻¹⁴⁹
                // just above the normal minimum
                3 => 1.3e-38f * (rng.Next(2) * 2 - 1),
                4 => (float)(rng.NextDouble() - 0.5) * 1e-4f,
                _ => 0f,
            };
            v[i] = i % 9 == 0 ? 0f : (float)rng.NextDouble() * 1e-6f;
        }
        float[] p2 = (float[])p.Clone(), m2 = (float[])m.Clone(), v2 = (float[])v.Clone();
        for (int step = 0; step < 60; step++)
        {
            AdamUpdate.Step(p, g, m, v, 1e-3f, oneMinusBeta1, 0.999f, 0.001f, 0.5f, 1e-8f, l2, decay);
            ElementwiseReference.AdamStep(p2, g, m2, v2, 1e-3f, oneMinusBeta1, 0.999f, 0.001f, 0.5f, 1e-8f, l2,
                decay);
            for (int i = 0; i < n; i++)
            {
                if (BitConverter.SingleToInt32Bits(m[i]) != BitConverter.SingleToInt32Bits(m2[i]))
                    Assert.Fail($"step {step}: m[{i}] = {m[i]:R} ({BitConverter.SingleToInt32Bits(m[i]):X8}), " +
                        $"reference {m2[i]:R} ({BitConverter.SingleToInt32Bits(m2[i]):X8})");
                if (BitConverter.SingleToInt32Bits(p[i]) != BitConverter.SingleToInt32Bits(p2[i]))
                    Assert.Fail($"step {step}: θ[{i}] = {p[i]:R}, reference {p2[i]:R}");
                if (BitConverter.SingleToInt32Bits(v[i]) != BitConverter.SingleToInt32Bits(v2[i]))
                    Assert.Fail($"step {step}: v[{i}] = {v[i]:R}, reference {v2[i]:R}");
            }
        }
        // Under round-to-nearest a moment of ≤ 5·2⁻¹⁴⁹ never decays further (0.1·5 rounds to 0), so subnormals
        // persist to the end, as in PyTorch: without L2 decay the path was exercised on every one of the 60 steps.
        if (l2 == 0f && oneMinusBeta1 < 0.5f)
            Assert.That(m.Count(x => x != 0f && float.IsSubnormal(x)), Is.GreaterThan(n / 6));
    }
}
