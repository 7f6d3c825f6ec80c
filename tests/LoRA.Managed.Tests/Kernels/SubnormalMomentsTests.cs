using System.Runtime.Intrinsics;
using LoRA.Managed.Kernels;

namespace LoRA.Managed.Tests.Kernels;

/// <summary>
/// In a sparse chunk Adam's pass skips the subnormal-moment lane test for a vector whose first moments have no
/// non-zero subnormal (<see cref="SubnormalMoments.Any"/>); a dense chunk tests every vector
/// (<see cref="SubnormalMoments.Dense"/>). A wrong "none" or a wrong kind would not change a bit (the ordinary path
/// computes the same IEEE results, slowly), only the time, so the predicates are tested on their own; the pass is held
/// to the reference with vectors and chunks of each kind side by side.
/// </summary>
public class SubnormalMomentsTests
{
    private static readonly int[] Boundaries =
        [0, 1, 2, 0x7F_FFFF, 0x80_0000, 0x80_0001, 0x3F80_0000, 0x7F80_0000, 0x7FC0_0000];

    [Test]
    public void AnyFindsExactlyTheNonZeroSubnormalsWhateverTheLaneAndSign()
    {
        foreach (int bits in Boundaries)
            foreach (int sign in new[] { 0, unchecked((int)0x8000_0000) })
                for (int lane = 0; lane < 16; lane++)
                {
                    var lanes = new float[16];
                    Array.Fill(lanes, 1f);
                    lanes[lane] = BitConverter.Int32BitsToSingle(bits | sign);
                    bool subnormal = bits is > 0 and < 0x80_0000;
                    Assert.That(SubnormalMoments.Any(Vector512.Create(lanes)), Is.EqualTo(subnormal),
                        $"bits {bits | sign:X8} in lane {lane}");
                    // The dense loop's count comes from CountedLanes, whatever the gradient and θ: here g = 1 and
                    // θ = 0, so no lane is selected, yet a subnormal m is counted.
                    int flagged = 5;
                    Vector512<int> selected = SubnormalMoments.CountedLanes(Vector512.Create(lanes),
                        Vector512<float>.One, Vector512<float>.Zero, Vector512<float>.Zero, ref flagged);
                    Assert.That(flagged, Is.EqualTo(subnormal ? 6 : 5),
                        $"counted: bits {bits | sign:X8} in lane {lane}");
                    Assert.That(selected, Is.EqualTo(Vector512<int>.Zero));
                }
    }

    /// <summary>One subnormal lane among ordinary ones, in every position, and whole vectors without any (the two
    /// paths of one pass): the scalar reference's bits over steps in which the lone moments keep decaying.</summary>
    [Test]
    public void AdamWithLoneSubnormalLanesMatchesReferenceBitForBit()
    {
        const int n = 16 * 40 + 3;
        var rng = new Random(77);
        var (p, g, m, v) = OrdinaryState(n, rng);
        // Vector k (k < 32) holds one subnormal moment with a zero gradient in lane k % 16; the rest have none.
        for (int k = 0; k < 32; k++)
        {
            int i = 16 * k + k % 16;
            m[i] = BitConverter.Int32BitsToSingle((k % 2 == 0 ? 0 : unchecked((int)0x8000_0000)) | (5 + 1000 * k));
            g[i] = 0f;
        }
        StepBesideReference(p, g, m, v, steps: 20);
        Assert.That(m.Count(float.IsSubnormal), Is.EqualTo(32), "the lone moments stayed subnormal");
    }

    [Test]
    public void AChunkIsDenseFromOneVectorInDenseShare()
    {
        const int vectors = SubnormalMoments.ChunkLength / 16;
        Assert.That(SubnormalMoments.Dense(0, vectors), Is.False);
        Assert.That(SubnormalMoments.Dense(vectors / SubnormalMoments.DenseShare - 1, vectors), Is.False);
        Assert.That(SubnormalMoments.Dense(vectors / SubnormalMoments.DenseShare, vectors), Is.True);
        Assert.That(SubnormalMoments.Dense(1, 1), Is.True, "a lone vector with one");
    }

    /// <summary>
    /// One tensor whose chunks are of every kind, side by side: dense twice (the second updated by the branch-free
    /// loop, since a chunk is updated as its predecessor turned out), clean (after a dense one: the branch-free loop on
    /// no subnormal), sparse with a few subnormal moments (the per-vector test), then a partial chunk and a scalar
    /// tail; on one thread and split over two. The scalar reference's bits over steps in which the moments keep
    /// decaying.
    /// </summary>
    [TestCase(1, 6 * SubnormalMoments.ChunkLength + 16 * 5 + 7)]
    [TestCase(2, 72 * SubnormalMoments.ChunkLength + 16 * 9 + 11)]
    public void AdamMatchesReferenceInDenseAndSparseChunks(int threads, int n)
    {
        const int chunk = SubnormalMoments.ChunkLength;
        var rng = new Random(2026);
        var (p, g, m, v) = OrdinaryState(n, rng);
        void Subnormal(int i, int units)
        {
            m[i] = BitConverter.Int32BitsToSingle((rng.Next(2) == 0 ? 0 : unchecked((int)0x8000_0000)) | units);
            g[i] = rng.Next(4) == 0 ? (float)(rng.NextDouble() - 0.5) * 1e-2f : 0f; // mostly a zero gradient
        }
        int chunks = n / chunk;
        for (int c = 0; c < chunks; c++)
        {
            int kind = c % 4, at = c * chunk;
            if (kind <= 1) // dense: about one lane in eight, in roughly half the vectors
                for (int i = at; i < at + chunk; i++)
                    if (rng.Next(8) == 0) Subnormal(i, 1 + rng.Next(0x7F_FFFF));
            if (kind == 3) // sparse: a few vectors
                foreach (int vector in new[] { 3, 17, 50, 63 })
                    Subnormal(at + 16 * vector + rng.Next(16), 5 + rng.Next(5000));
        }
        for (int i = chunks * chunk; i < n; i++)
            if (rng.Next(3) == 0) Subnormal(i, 1 + rng.Next(0x7F_FFFF)); // the partial chunk and the tail
        for (int c = 0; c < chunks; c++)
        {
            int flagged = 0;
            for (int k = c * chunk; k < (c + 1) * chunk; k += 16)
                if (m.AsSpan(k, 16).ToArray().Any(x => x != 0f && float.IsSubnormal(x))) flagged++;
            Assert.That(SubnormalMoments.Dense(flagged, chunk / 16), Is.EqualTo(c % 4 <= 1), $"chunk {c}'s kind");
        }
        using (ComputeThreads.Use(threads)) StepBesideReference(p, g, m, v, steps: 12);
        Assert.That(m.Count(x => x != 0f && float.IsSubnormal(x)), Is.GreaterThan(chunks * 4),
            "subnormal moments were still there at the end");
    }

    // θ, g, m and v of n ordinary elements: no subnormal moment, no zero gradient.
    private static (float[] P, float[] G, float[] M, float[] V) OrdinaryState(int n, Random rng)
    {
        float[] p = new float[n], g = new float[n], m = new float[n], v = new float[n];
        for (int i = 0; i < n; i++)
        {
            p[i] = (float)(rng.NextDouble() * 2 - 1);
            m[i] = (float)(rng.NextDouble() - 0.5) * 1e-3f;
            v[i] = (float)rng.NextDouble() * 1e-6f;
            g[i] = (float)(rng.NextDouble() - 0.5) * 1e-2f;
        }
        return (p, g, m, v);
    }

    // Adam's pass and the scalar reference side by side for some steps (PyTorch's defaults, lr 1e-3), every element's
    // θ, m and v compared bit for bit after each.
    private static void StepBesideReference(float[] p, float[] g, float[] m, float[] v, int steps)
    {
        float[] p2 = (float[])p.Clone(), m2 = (float[])m.Clone(), v2 = (float[])v.Clone();
        for (int step = 0; step < steps; step++)
        {
            AdamUpdate.Step(p, g, m, v, 1e-3f, 0.1f, 0.999f, 0.001f, 0.5f, 1e-8f, 0f, 1f);
            ElementwiseReference.AdamStep(p2, g, m2, v2, 1e-3f, 0.1f, 0.999f, 0.001f, 0.5f, 1e-8f, 0f, 1f);
            for (int i = 0; i < p.Length; i++)
                if (BitConverter.SingleToInt32Bits(m[i]) != BitConverter.SingleToInt32Bits(m2[i]) ||
                    BitConverter.SingleToInt32Bits(p[i]) != BitConverter.SingleToInt32Bits(p2[i]) ||
                    BitConverter.SingleToInt32Bits(v[i]) != BitConverter.SingleToInt32Bits(v2[i]))
                    Assert.Fail($"step {step}, element {i} (chunk {i / SubnormalMoments.ChunkLength}): m {m[i]:R} / " +
                        $"{m2[i]:R}, θ {p[i]:R} / {p2[i]:R}, v {v[i]:R} / {v2[i]:R}");
        }
    }
}
