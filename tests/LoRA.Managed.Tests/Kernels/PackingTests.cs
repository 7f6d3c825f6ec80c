using System.Runtime.Intrinsics.X86;
using LoRA.Managed.Kernels;

namespace LoRA.Managed.Tests.Kernels;

/// <summary>The in-register transpose used to pack a transposed B, against the definition.</summary>
public class PackingTests
{
    [Test]
    public unsafe void Transpose16x16MatchesDefinition()
    {
        if (!Avx512F.IsSupported) Assert.Ignore("AVX-512F is not available on this machine.");
        int srcStride = 19, dstStride = 32;
        float[] src = new float[16 * srcStride], dst = new float[16 * dstStride];
        for (int i = 0; i < src.Length; i++) src[i] = i;
        fixed (float* s = src, d = dst) Packing.Transpose16x16(s, srcStride, d, dstStride);
        for (int t = 0; t < 16; t++)
            for (int j = 0; j < 16; j++)
                Assert.That(dst[t * dstStride + j], Is.EqualTo(src[j * srcStride + t]), $"dst[{t},{j}]");
        for (int t = 0; t < 16; t++)
            for (int j = 16; j < dstStride; j++)
                Assert.That(dst[t * dstStride + j], Is.EqualTo(0f), "outside the block must stay untouched");
    }
}
