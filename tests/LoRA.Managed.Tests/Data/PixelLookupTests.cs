using LoRA.Managed.Data;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.Data;

/// <summary>The gathered byte→float lookup against its scalar twin, on awkward lengths and every byte value.</summary>
public class PixelLookupTests
{
    [TestCase(1)]
    [TestCase(7)]
    [TestCase(8)]
    [TestCase(63)]
    [TestCase(65)]
    [TestCase(129)]
    [TestCase(784)]
    public void GatherEqualsTheScalarLoopBitForBit(int n)
    {
        var g = new TorchGenerator((ulong)n);
        var pixels = new byte[n + 3];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)g.NextInt(256);
        pixels[0] = 255; // the table's last entry
        float[] table = new float[256];
        g.FillUniform(table, -3f, 3f);
        table[7] = -0f;
        table[9] = float.NaN;
        // An offset start and a length that leaves a tail: the vector loop must neither skip nor overrun.
        ReadOnlySpan<byte> src = pixels.AsSpan(1, n);
        float[] fast = new float[n + 1], slow = new float[n + 1];
        fast[n] = slow[n] = 42f;
        PixelLookup.Map(src, table, fast);
        PixelLookup.MapReference(src, table, slow);
        Assert.That(fast.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(slow.Select(BitConverter.SingleToInt32Bits)));
        Assert.That(fast[n], Is.EqualTo(42f), "nothing written past the pixels");
    }

    [Test]
    public void EveryByteValueMapsToItsEntry()
    {
        byte[] all = Enumerable.Range(0, 256).Select(v => (byte)v).ToArray();
        float[] table = Enumerable.Range(0, 256).Select(v => v * 0.5f - 7f).ToArray();
        float[] dst = new float[256];
        PixelLookup.Map(all, table, dst);
        Assert.That(dst, Is.EqualTo(table));
    }

    [Test]
    public void AShortTableIsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => PixelLookup.Map(new byte[4], new float[255], new float[4]));
        Assert.That(e!.Message, Does.Contain("255 entries"));
    }
}
