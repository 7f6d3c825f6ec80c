using System.Buffers.Binary;
using CsCheck;

namespace LoRA.Managed.Tests.Fuzz;

/// <summary>
/// One edit of a file's bytes. Positions are drawn as non-negative ints and reduced modulo the length at the
/// time the edit applies, so a mutation stays meaningful after earlier ones have changed the length, and the
/// small files fuzzed here see every position hit many times over 10,000 cases.
/// </summary>
internal abstract record ByteMutation
{
    public abstract byte[] Apply(byte[] input);

    protected static int Index(int drawn, int length) => length == 0 ? 0 : drawn % length;

    /// <summary>Values that sit on the edges parsers get wrong: 0, 1, powers of two and their neighbours, type maxima,
    /// MNIST sizes, the safetensors header limit.</summary>
    public static readonly ulong[] Interesting =
    [
        0, 1, 2, 3, 4, 7, 8, 9, 15, 16, 28, 0x7F, 0x80, 0xFF, 0x100, 784, 0x7FFF, 0x8000, 0xFFFF, 10_000, 60_000,
        100_000_000, 100_000_001, 0x7FFF_FFC7, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF, 0x1_0000_0000,
        0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, ulong.MaxValue - 7, ulong.MaxValue,
    ];

    /// <summary>Mutations for any binary file. <paramref name="fieldOffsets"/> are where the format keeps its integer
    /// fields.</summary>
    public static Gen<ByteMutation> Any(int[] fieldOffsets, int fieldWidth, bool bigEndian)
    {
        var pos = Gen.Int[0, int.MaxValue];
        var value = Gen.Frequency((3, Gen.Int[0, Interesting.Length - 1].Select(i => Interesting[i])), (1, Gen.ULong));
        var blob = Gen.Byte.Array[1, 16];
        var field = Gen.Int[0, fieldOffsets.Length - 1].Select(i => fieldOffsets[i]);
        return Gen.Frequency(
            (3, pos.Select(p => (ByteMutation)new Truncate(p))),
            (4, Gen.Select(pos, Gen.Int[0, 7], (p, b) => (ByteMutation)new FlipBit(p, b))),
            (3, Gen.Select(pos, Gen.Byte, (p, v) => (ByteMutation)new SetByte(p, v))),
            (4, Gen.Select(field, value, (o, v) => (ByteMutation)new SetField(o, v, fieldWidth, bigEndian))),
            (2, Gen.Select(field, Gen.Long[-9, 9],
                (o, d) => (ByteMutation)new NudgeField(o, d, fieldWidth, bigEndian))),
            (2, Gen.Select(field, field, (a, b) => (ByteMutation)new SwapRanges(a, b, fieldWidth))),
            (1, Gen.Select(pos, pos, Gen.Int[1, 8], (a, b, w) => (ByteMutation)new SwapRanges(a, b, w))),
            (2, Gen.Select(pos, blob, (p, bytes) => (ByteMutation)new InsertBytes(p, bytes))),
            (2, Gen.Select(pos, Gen.Int[1, 16], (p, n) => (ByteMutation)new DeleteBytes(p, n))),
            (1, Gen.Select(pos, Gen.Int[1, 32], pos, (p, n, to) => (ByteMutation)new DuplicateRange(p, n, to))),
            (1, blob.Select(bytes => (ByteMutation)new InsertBytes(int.MaxValue, bytes))));
    }
}

/// <summary>Keeps the first <c>At mod (length + 1)</c> bytes: every cut from the empty file to the whole one.</summary>
internal sealed record Truncate(int At) : ByteMutation
{
    public override byte[] Apply(byte[] input) => input[..(At % (input.Length + 1))];
}

internal sealed record FlipBit(int At, int Bit) : ByteMutation
{
    public override byte[] Apply(byte[] input)
    {
        if (input.Length == 0) return input;
        var b = (byte[])input.Clone();
        b[Index(At, b.Length)] ^= (byte)(1 << Bit);
        return b;
    }
}

internal sealed record SetByte(int At, byte Value) : ByteMutation
{
    public override byte[] Apply(byte[] input)
    {
        if (input.Length == 0) return input;
        var b = (byte[])input.Clone();
        b[Index(At, b.Length)] = Value;
        return b;
    }
}

/// <summary>Overwrites an integer field (IDX's big-endian sizes, safetensors' little-endian header length) with
/// <see cref="Value"/>; bytes past the end are dropped.</summary>
internal sealed record SetField(int Offset, ulong Value, int Width, bool BigEndian) : ByteMutation
{
    public override byte[] Apply(byte[] input) => WriteField(input, Offset, Value, Width, BigEndian);

    internal static byte[] WriteField(byte[] input, int offset, ulong value, int width, bool bigEndian)
    {
        var b = (byte[])input.Clone();
        Span<byte> field = stackalloc byte[8];
        if (bigEndian)
            BinaryPrimitives.WriteUInt64BigEndian(field, value);
        else
            BinaryPrimitives.WriteUInt64LittleEndian(field, value);
        ReadOnlySpan<byte> bytes = bigEndian ? field[(8 - width)..] : field[..width];
        for (int i = 0; i < width && offset + i < b.Length; i++) b[offset + i] = bytes[i];
        return b;
    }

    internal static ulong ReadField(byte[] input, int offset, int width, bool bigEndian)
    {
        Span<byte> field = stackalloc byte[8];
        field.Clear();
        for (int i = 0; i < width && offset + i < input.Length; i++)
            field[bigEndian ? 8 - width + i : i] = input[offset + i];
        return bigEndian ? BinaryPrimitives.ReadUInt64BigEndian(field) : BinaryPrimitives.ReadUInt64LittleEndian(field);
    }
}

/// <summary>Adds a small delta to an integer field: off-by-one sizes and header lengths.</summary>
internal sealed record NudgeField(int Offset, long Delta, int Width, bool BigEndian) : ByteMutation
{
    public override byte[] Apply(byte[] input) =>
        SetField.WriteField(input, Offset, SetField.ReadField(input, Offset, Width, BigEndian) + (ulong)Delta, Width,
            BigEndian);
}

/// <summary>Swaps two ranges of <see cref="Width"/> bytes (two header fields, or any two spots).</summary>
internal sealed record SwapRanges(int A, int B, int Width) : ByteMutation
{
    public override byte[] Apply(byte[] input)
    {
        if (input.Length < Width) return input;
        var b = (byte[])input.Clone();
        int a = A % (b.Length - Width + 1), c = B % (b.Length - Width + 1);
        byte[] first = b.AsSpan(a, Width).ToArray();
        b.AsSpan(c, Width).CopyTo(b.AsSpan(a, Width));
        first.CopyTo(b.AsSpan(c, Width));
        return b;
    }
}

/// <summary>Inserts bytes at a position (<c>int.MaxValue</c>: appends them).</summary>
internal sealed record InsertBytes(int At, byte[] Bytes) : ByteMutation
{
    public override byte[] Apply(byte[] input)
    {
        int p = At == int.MaxValue ? input.Length : At % (input.Length + 1);
        return [.. input.AsSpan(0, p), .. Bytes, .. input.AsSpan(p)];
    }

    public override string ToString() => $"InsertBytes {{ At = {At}, Bytes = {Convert.ToHexString(Bytes)} }}";
}

internal sealed record DeleteBytes(int At, int Count) : ByteMutation
{
    public override byte[] Apply(byte[] input)
    {
        if (input.Length == 0) return input;
        int p = Index(At, input.Length), n = Math.Min(Count, input.Length - p);
        return [.. input.AsSpan(0, p), .. input.AsSpan(p + n)];
    }
}

/// <summary>Copies a slice to another position: repeated fields, a second header, duplicated keys.</summary>
internal sealed record DuplicateRange(int At, int Count, int To) : ByteMutation
{
    public override byte[] Apply(byte[] input)
    {
        if (input.Length == 0) return input;
        int p = Index(At, input.Length), n = Math.Min(Count, input.Length - p), to = To % (input.Length + 1);
        byte[] slice = input.AsSpan(p, n).ToArray();
        return [.. input.AsSpan(0, to), .. slice, .. input.AsSpan(to)];
    }
}
