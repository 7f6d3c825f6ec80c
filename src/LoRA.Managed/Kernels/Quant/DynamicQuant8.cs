namespace LoRA.Managed.Kernels;

/// <summary>
/// bitsandbytes' blockwise 8-bit quantisation with its signed "dynamic tree" code (<c>create_dynamic_map</c>), used
/// by QLoRA to double-quantise the NF4 block scales: subtract their mean (the <c>offset</c>), cut into blocks of
/// <see cref="BlockSize"/> (256), keep each block's absmax in F32 and each value the nearest code to
/// <c>value/absmax</c>. Expanding is <c>Code[q]·absmax + offset</c>.
/// </summary>
public static class DynamicQuant8
{
    /// <summary>Values per block for the nested quantisation of absmax (bitsandbytes: 256).</summary>
    public const int BlockSize = 256;

    /// <summary>
    /// The 256 code values, ascending, as <c>create_dynamic_map(signed=True)</c> builds them in float32.
    /// </summary>
    public static ReadOnlySpan<float> Code => CodeTable;

    private static readonly float[] CodeTable = MakeCode();

    /// <summary>Number of nested blocks for <paramref name="length"/> scales.</summary>
    public static int BlockCount(int length) => (length + BlockSize - 1) / BlockSize;

    /// <summary>Quantises <paramref name="values"/> around their mean, which is returned as the offset.</summary>
    public static float Quantize(ReadOnlySpan<float> values, Span<byte> codes, Span<float> absmax)
    {
        if (codes.Length < values.Length || absmax.Length < BlockCount(values.Length))
            throw new ArgumentException($"DynamicQuant8.Quantize: {values.Length} values need as many codes and "
                + $"{BlockCount(values.Length)} scales; got {codes.Length} and {absmax.Length}.");
        double sum = 0;
        foreach (float v in values) sum += v;
        float offset = values.Length == 0 ? 0f : (float)(sum / values.Length);
        for (int b = 0, start = 0; start < values.Length; b++, start += BlockSize)
        {
            int n = Math.Min(BlockSize, values.Length - start);
            float max = 0f;
            for (int i = 0; i < n; i++) max = MathF.Max(max, MathF.Abs(values[start + i] - offset));
            absmax[b] = max;
            float inverse = max == 0f ? 0f : 1f / max;
            for (int i = 0; i < n; i++) codes[start + i] = Nearest((values[start + i] - offset) * inverse);
        }
        return offset;
    }

    /// <summary>Expands <c>Code[q]·absmax + offset</c> into <paramref name="destination"/>.</summary>
    public static void Dequantize(ReadOnlySpan<byte> codes, ReadOnlySpan<float> absmax, float offset,
        Span<float> destination)
    {
        if (destination.Length < codes.Length || absmax.Length < BlockCount(codes.Length))
            throw new ArgumentException($"DynamicQuant8.Dequantize: {codes.Length} codes need as many outputs and "
                + $"{BlockCount(codes.Length)} scales; got {destination.Length} and {absmax.Length}.");
        for (int i = 0; i < codes.Length; i++) destination[i] = Value(codes[i], absmax[i / BlockSize], offset);
    }

    /// <summary>One dequantised value: the code's level times its block's absmax, plus the offset.</summary>
    public static float Value(byte code, float blockAbsmax, float offset) => CodeTable[code] * blockAbsmax + offset;

    /// <summary>The index of the code nearest to <paramref name="x"/> (binary search; ties go lower).</summary>
    public static byte Nearest(float x)
    {
        float[] c = CodeTable;
        int lo = 0, hi = c.Length - 1;
        while (hi - lo > 1)
        {
            int m = (lo + hi) >> 1;
            if (c[m] <= x) lo = m; else hi = m;
        }
        return (byte)(x - c[lo] <= c[hi] - x ? lo : hi);
    }

    private static float[] MakeCode()
    {
        var code = new float[256];
        for (int i = 0; i < 256; i++) code[i] = BitConverter.UInt32BitsToSingle(CodeBits[i]);
        return code;
    }

    // create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8) as PyTorch evaluates it in float32 (the
    // means of torch.linspace(0.1, 1, 2^i + 1) scaled by 10^(i-6), both signs, then 0 and 1, sorted). Stored as
    // bits because torch's vectorised linspace rounds a few values differently from a scalar loop; written by
    // tests/fixtures/quant/make_dynamic_map.py, and a test holds this table to that output.
    private static ReadOnlySpan<uint> CodeBits =>
    [
        0xBF7E3333, 0xBF7A9999, 0xBF770000, 0xBF736666, 0xBF6FCCCC, 0xBF6C3333, 0xBF68999A, 0xBF650000,
        0xBF616666, 0xBF5DCCCC, 0xBF5A3333, 0xBF569999, 0xBF530000, 0xBF4F6666, 0xBF4BCCCC, 0xBF483333,
        0xBF44999A, 0xBF410000, 0xBF3D6667, 0xBF39CCCD, 0xBF363334, 0xBF32999A, 0xBF2F0000, 0xBF2B6667,
        0xBF27CCCD, 0xBF243333, 0xBF20999A, 0xBF1D0000, 0xBF196666, 0xBF15CCCD, 0xBF123334, 0xBF0E999A,
        0xBF0B0000, 0xBF076666, 0xBF03CCCD, 0xBF003333, 0xBEF93334, 0xBEF20000, 0xBEEACCCC, 0xBEE3999A,
        0xBEDC6666, 0xBED53332, 0xBECE0000, 0xBEC6CCCC, 0xBEBF999A, 0xBEB86666, 0xBEB13332, 0xBEAA0000,
        0xBEA2CCCC, 0xBE9B999A, 0xBE946666, 0xBE8D3334, 0xBE860000, 0xBE7D999A, 0xBE6F3334, 0xBE60CCCD,
        0xBE526666, 0xBE440000, 0xBE359999, 0xBE273333, 0xBE18CCCD, 0xBE0A6666, 0xBDF80000, 0xBDDB3334,
        0xBDC9EB85, 0xBDC428F5, 0xBDBE6667, 0xBDB8A3D7, 0xBDB2E148, 0xBDAD1EB8, 0xBDA75C28, 0xBDA1999A,
        0xBD9BD70A, 0xBD96147B, 0xBD9051EB, 0xBD8A8F5D, 0xBD84CCCD, 0xBD7E147A, 0xBD728F5D, 0xBD670A3D,
        0xBD5B851F, 0xBD500000, 0xBD447AE1, 0xBD38F5C3, 0xBD2D70A3, 0xBD21EB85, 0xBD166667, 0xBD0AE147,
        0xBCFEB852, 0xBCE7AE13, 0xBCD0A3D7, 0xBCB9999A, 0xBCA28F5C, 0xBC8B851F, 0xBC68F5C3, 0xBC3AE148,
        0xBC1F3B64, 0xBC160418, 0xBC0CCCCD, 0xBC039581, 0xBBF4BC6A, 0xBBE24DD3, 0xBBCFDF3B, 0xBBBD70A4,
        0xBBAB020D, 0xBB989374, 0xBB8624DD, 0xBB676C8A, 0xBB428F5C, 0xBB1DB22D, 0xBAF1A9FC, 0xBAA7EF9D,
        0xBA7765FF, 0xBA59E83E, 0xBA3C6A80, 0xBA1EECC1, 0xBA016F01, 0xB9C7E283, 0xB98CE705, 0xB923D70B,
        0xB8BA1F4B, 0xB88AEFB3, 0xB8378034, 0xB7B24206, 0xB70205FF, 0xB65A1A94, 0xB513A3B7, 0x00000000,
        0x3513A3B7, 0x365A1A94, 0x370205FF, 0x37B24206, 0x38378034, 0x388AEFB3, 0x38BA1F4B, 0x3923D70B,
        0x398CE705, 0x39C7E283, 0x3A016F01, 0x3A1EECC1, 0x3A3C6A80, 0x3A59E83E, 0x3A7765FF, 0x3AA7EF9D,
        0x3AF1A9FC, 0x3B1DB22D, 0x3B428F5C, 0x3B676C8A, 0x3B8624DD, 0x3B989374, 0x3BAB020D, 0x3BBD70A4,
        0x3BCFDF3B, 0x3BE24DD3, 0x3BF4BC6A, 0x3C039581, 0x3C0CCCCD, 0x3C160418, 0x3C1F3B64, 0x3C3AE148,
        0x3C68F5C3, 0x3C8B851F, 0x3CA28F5C, 0x3CB9999A, 0x3CD0A3D7, 0x3CE7AE13, 0x3CFEB852, 0x3D0AE147,
        0x3D166667, 0x3D21EB85, 0x3D2D70A3, 0x3D38F5C3, 0x3D447AE1, 0x3D500000, 0x3D5B851F, 0x3D670A3D,
        0x3D728F5D, 0x3D7E147A, 0x3D84CCCD, 0x3D8A8F5D, 0x3D9051EB, 0x3D96147B, 0x3D9BD70A, 0x3DA1999A,
        0x3DA75C28, 0x3DAD1EB8, 0x3DB2E148, 0x3DB8A3D7, 0x3DBE6667, 0x3DC428F5, 0x3DC9EB85, 0x3DDB3334,
        0x3DF80000, 0x3E0A6666, 0x3E18CCCD, 0x3E273333, 0x3E359999, 0x3E440000, 0x3E526666, 0x3E60CCCD,
        0x3E6F3334, 0x3E7D999A, 0x3E860000, 0x3E8D3334, 0x3E946666, 0x3E9B999A, 0x3EA2CCCC, 0x3EAA0000,
        0x3EB13332, 0x3EB86666, 0x3EBF999A, 0x3EC6CCCC, 0x3ECE0000, 0x3ED53332, 0x3EDC6666, 0x3EE3999A,
        0x3EEACCCC, 0x3EF20000, 0x3EF93334, 0x3F003333, 0x3F03CCCD, 0x3F076666, 0x3F0B0000, 0x3F0E999A,
        0x3F123334, 0x3F15CCCD, 0x3F196666, 0x3F1D0000, 0x3F20999A, 0x3F243333, 0x3F27CCCD, 0x3F2B6667,
        0x3F2F0000, 0x3F32999A, 0x3F363334, 0x3F39CCCD, 0x3F3D6667, 0x3F410000, 0x3F44999A, 0x3F483333,
        0x3F4BCCCC, 0x3F4F6666, 0x3F530000, 0x3F569999, 0x3F5A3333, 0x3F5DCCCC, 0x3F616666, 0x3F650000,
        0x3F68999A, 0x3F6C3333, 0x3F6FCCCC, 0x3F736666, 0x3F770000, 0x3F7A9999, 0x3F7E3333, 0x3F800000,
    ];
}
