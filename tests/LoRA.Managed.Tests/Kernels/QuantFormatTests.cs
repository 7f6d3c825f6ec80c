using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;
using LoRA.Managed.Tests.Docs;

namespace LoRA.Managed.Tests.Kernels;

/// <summary>
/// The frozen-weight storage formats (issue 16) against their scalar twins in <see cref="QuantReference"/>, on awkward
/// lengths, with each format's error bound: int8 absmax/127/2 per row; NF4 half the widest level gap × absmax plus
/// the error of the double-quantised absmax.
/// </summary>
public class QuantFormatTests
{
    private static readonly int[] Sizes = [1, 7, 63, 64, 65, 129, 300];

    private static float[] Rand(int n, int seed, float scale = 1f)
    {
        var x = new float[n];
        new TorchGenerator((ulong)seed).FillNormal(x, 0f, scale);
        return x;
    }

    [Test]
    public void Bf16MatchesDefinitionAndRoundTrips()
    {
        float[] x = Rand(4096, 1, 3f);
        float[] special = [0f, -0f, 1f, float.Epsilon, float.MaxValue, float.PositiveInfinity, float.NegativeInfinity,
            BitConverter.UInt32BitsToSingle(0x3F808000), BitConverter.UInt32BitsToSingle(0x3F818000)];
        float[] all = [.. x, .. special];
        var q = new ushort[all.Length];
        Bf16.Quantize(all, q);
        for (int i = 0; i < all.Length; i++)
            Assert.That(q[i], Is.EqualTo(QuantReference.Bf16FromFloat(all[i])), $"at {i}");
        var back = new float[all.Length];
        Bf16.Dequantize(q, back);
        for (int i = 0; i < x.Length; i++)
            Assert.That(Math.Abs(back[i] - x[i]), Is.LessThanOrEqualTo(Math.Abs(x[i]) * Math.Pow(2, -8)));
        Assert.That(float.IsNaN(Bf16.ToFloat(Bf16.FromFloat(float.NaN))));
    }

    [Test]
    public void F16RoundTripsWithinHalfAnUlp()
    {
        float[] x = Rand(1000, 2);
        var h = new Half[x.Length];
        var back = new float[x.Length];
        F16.Quantize(x, h);
        F16.Dequantize(h, back);
        for (int i = 0; i < x.Length; i++)
        {
            Assert.That(h[i], Is.EqualTo((Half)x[i]));
            Assert.That(Math.Abs(back[i] - x[i]), Is.LessThanOrEqualTo(Math.Abs(x[i]) * Math.Pow(2, -11) + 3e-8));
        }
    }

    [Test]
    public void Int8RowwiseMatchesReferenceWithinBound(
        [ValueSource(nameof(Sizes))] int rows, [Values(1, 7, 65, 129)] int columns)
    {
        float[] w = Rand(rows * columns, rows * 1000 + columns);
        var codes = new sbyte[w.Length];
        var scales = new float[rows];
        Int8Rowwise.Quantize(w, rows, columns, codes, scales);
        var (rq, rs) = QuantReference.Int8Quantize(w, rows, columns);
        Assert.That(codes, Is.EqualTo(rq));
        Assert.That(scales, Is.EqualTo(rs));
        var back = new float[w.Length];
        Int8Rowwise.Dequantize(codes, scales, rows, columns, back);
        Assert.That(back, Is.EqualTo(QuantReference.Int8Dequantize(rq, rs, rows, columns)));
        for (int i = 0; i < w.Length; i++)
        {
            // scale is absmax/127, so the bound absmax/127/2 is half a scale (a hair more for float rounding).
            float bound = scales[i / columns] / 2f * 1.0001f;
            Assert.That(Math.Abs(back[i] - w[i]), Is.LessThanOrEqualTo(bound), $"element {i}");
        }
    }

    [Test]
    public void Int8ZeroRowStaysZero()
    {
        var codes = new sbyte[3];
        var scales = new float[1];
        Int8Rowwise.Quantize(new float[3], 1, 3, codes, scales);
        Assert.That(codes, Is.EqualTo(new sbyte[3]));
        Assert.That(scales[0], Is.EqualTo(0f));
    }

    [Test]
    public void Nf4LevelsAreBitsandbytesTable()
    {
        Assert.That(Nf4.Levels.Length, Is.EqualTo(16));
        Assert.That(Nf4.Levels[7], Is.EqualTo(0f));
        for (int i = 0; i < 15; i++) Assert.That(Nf4.Levels[i], Is.LessThan(Nf4.Levels[i + 1]));
        Assert.That(Nf4.HalfLargestGap, Is.EqualTo((1f - 0.6961928009986877f) / 2f).Within(1e-7f));
    }

    [Test]
    public void Nf4MatchesReferenceAndUnpacksAnyRange([ValueSource(nameof(Sizes))] int n)
    {
        float[] w = Rand(n, 10 + n, 0.05f);
        var packed = new byte[Nf4.PackedLength(n)];
        var absmax = new float[Nf4.BlockCount(n)];
        Nf4.Quantize(w, packed, absmax);
        var (idx, rabsmax) = QuantReference.Nf4Quantize(w);
        Assert.That(absmax, Is.EqualTo(rabsmax));
        for (int i = 0; i < n; i++)
            Assert.That((i & 1) == 0 ? packed[i >> 1] >> 4 : packed[i >> 1] & 15, Is.EqualTo(idx[i]), $"index {i}");
        float[] expected = QuantReference.Nf4Dequantize(idx, rabsmax);
        // Every start and length, so odd starts, odd ends and block crossings are all covered.
        for (int start = 0; start < n; start += n > 70 ? 13 : 1)
            for (int len = 0; start + len <= n; len += n > 70 ? 11 : 1)
            {
                var part = new float[len];
                Nf4.Dequantize(packed, absmax, start, part);
                Assert.That(part, Is.EqualTo(expected.AsSpan(start, len).ToArray()), $"[{start}, +{len})");
            }
    }

    [Test]
    public void Nf4DoubleQuantisedRoundTripIsWithinBound([ValueSource(nameof(Sizes))] int blocksTimes)
    {
        int n = blocksTimes * 64 + 5;
        float[] w = Rand(n, 77 + n, 0.02f);
        for (int i = 0; i < n; i += 97) w[i] *= 8f; // outliers, so block scales differ
        var packed = new byte[Nf4.PackedLength(n)];
        var absmax = new float[Nf4.BlockCount(n)];
        Nf4.Quantize(w, packed, absmax);
        var codes = new byte[absmax.Length];
        var absmax2 = new float[DynamicQuant8.BlockCount(absmax.Length)];
        float offset = DynamicQuant8.Quantize(absmax, codes, absmax2);
        var absmaxBack = new float[absmax.Length];
        DynamicQuant8.Dequantize(codes, absmax2, offset, absmaxBack);
        var back = new float[n];
        Nf4.Dequantize(packed, absmaxBack, 0, back);
        for (int b = 0; b < absmax.Length; b++)
        {
            float scaleError = Math.Abs(absmaxBack[b] - absmax[b]);
            // Double quantisation's own bound: half the widest gap of the 8-bit code × the nested absmax.
            Assert.That(scaleError, Is.LessThanOrEqualTo(MaxHalfGap(DynamicQuant8.Code) * absmax2[b / 256] + 1e-7f));
            float bound = Nf4.HalfLargestGap * absmax[b] + scaleError + 1e-7f;
            for (int i = b * 64; i < Math.Min(n, b * 64 + 64); i++)
                Assert.That(Math.Abs(back[i] - w[i]), Is.LessThanOrEqualTo(bound), $"block {b} element {i}");
        }
    }

    [Test]
    public void DynamicCodeIsBitsandbytesShape()
    {
        ReadOnlySpan<float> c = DynamicQuant8.Code;
        Assert.That(c.Length, Is.EqualTo(256));
        Assert.That(c[0], Is.EqualTo(-0.99296875f).Within(1e-6f));
        Assert.That(c[255], Is.EqualTo(1f));
        Assert.That(c.ToArray(), Does.Contain(0f));
        for (int i = 0; i < 255; i++) Assert.That(c[i], Is.LessThanOrEqualTo(c[i + 1]));
        for (int i = 0; i < 256; i += 17) Assert.That(c[DynamicQuant8.Nearest(c[i])], Is.EqualTo(c[i]));
    }

    [Test]
    public void DynamicCodeIsBitIdenticalToTorchTwin()
    {
        // tests/fixtures/quant/make_dynamic_map.py runs bitsandbytes' create_dynamic_map in PyTorch.
        string file = Path.Combine(RepoPaths.Root, "tests", "fixtures", "quant", "dynamic_map.txt");
        uint[] expected = File.ReadAllLines(file).Where(l => l.Length > 0)
            .Select(l => Convert.ToUInt32(l, 16)).ToArray();
        uint[] ours = DynamicQuant8.Code.ToArray().Select(BitConverter.SingleToUInt32Bits).ToArray();
        Assert.That(ours, Is.EqualTo(expected));
    }

    private static float MaxHalfGap(ReadOnlySpan<float> code)
    {
        float g = 0f;
        for (int i = 0; i + 1 < code.Length; i++) g = Math.Max(g, code[i + 1] - code[i]);
        return g / 2f;
    }
}
