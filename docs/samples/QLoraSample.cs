using System.Globalization;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Samples;

/// <summary>
/// Chapter 9, "A frozen base in four bits": one block of 64 normally distributed weights through NF4 (levels,
/// absmax, the round-trip error against the format's bound), what double quantisation leaves per weight, and the
/// quantised product equal, bit for bit, to the float product over the dequantised weight.
/// </summary>
public static class QLoraSample
{
    /// <summary>Prints what chapter 9 quotes.</summary>
    public static void Run(TextWriter o)
    {
        OneBlock(o);
        BitsPerWeight(o);
        TheProductIsTheFloatProductOverTheExpandedWeight(o);
    }

    private static string F(float v) => v.ToString("0.0000", CultureInfo.InvariantCulture);

    private static void OneBlock(TextWriter o)
    {
        var w = new float[Nf4.BlockSize];
        new TorchGenerator(16).FillNormal(w, 0f, 0.02f);              // a weight block as initialised: N(0, 0.02²)
        var packed = new byte[Nf4.PackedLength(w.Length)];
        var absmax = new float[1];
        Nf4.Quantize(w, packed, absmax);
        var back = new float[w.Length];
        Nf4.Dequantize(packed, absmax, 0, back);
        int Index(int i) => (i & 1) == 0 ? packed[i >> 1] >> 4 : packed[i >> 1] & 15;
        o.WriteLine($"absmax {F(absmax[0])}");
        o.WriteLine("w[0..4]    " + string.Join(" ", w[..4].Select(F)));
        o.WriteLine("index      "
            + string.Join(" ", Enumerable.Range(0, 4).Select(i => Index(i).ToString().PadLeft(6))));
        o.WriteLine("expanded   " + string.Join(" ", back[..4].Select(F)));
        float worst = w.Zip(back, (a, b) => MathF.Abs(a - b)).Max();
        o.WriteLine($"max |w - expanded| / absmax = {F(worst / absmax[0])} <= {F(Nf4.HalfLargestGap)} " +
                    "(half the widest gap between levels)");
    }

    private static void BitsPerWeight(TextWriter o)
    {
        const int rows = 5632, columns = 2048;                      // TinyLlama's gate_proj
        var w = new float[rows * columns];
        new TorchGenerator(1).FillNormal(w, 0f, 0.02f);
        foreach (BaseDType d in new[] { BaseDType.Bf16, BaseDType.Int8, BaseDType.Nf4 })
        {
            QuantizedMatrix q = QuantizedMatrix.Quantize(w, rows, columns, d);
            double bits = 8.0 * q.StorageBytes / ((long)rows * columns);
            o.WriteLine($"{d,-4}: {q.StorageBytes / 1e6,5:F1} MB for {rows}×{columns} " +
                        $"({bits.ToString("0.000", CultureInfo.InvariantCulture)} bits a weight; f32 is " +
                        $"{4.0 * rows * columns / 1e6:F1} MB)");
        }
    }

    private static void TheProductIsTheFloatProductOverTheExpandedWeight(TextWriter o)
    {
        const int n = 7, outF = 65, inF = 129;                      // awkward shapes, as the tests use
        var g = new TorchGenerator(3);
        var w = new float[outF * inF];
        var x = new float[n * inF];
        g.FillNormal(w);
        g.FillNormal(x);
        QuantizedMatrix q = QuantizedMatrix.Quantize(w, outF, inF, BaseDType.Nf4);
        var expanded = new float[outF * inF];
        q.ExpandRange(0, expanded);
        var y = new float[n * outF];
        var reference = new float[n * outF];
        QuantizedGemm.MultiplyTransposed(q, n, x, y);                // W expanded inside the GEMM's packing
        Gemm.Multiply(false, true, n, outF, inF, 1f, x, inF, expanded, inF, 0f, reference, outF);
        o.WriteLine($"y = x·Wᵀ through the NF4 panels equals the float GEMM over the expanded W: " +
                    $"{y.AsSpan().SequenceEqual(reference)}");
    }
}
