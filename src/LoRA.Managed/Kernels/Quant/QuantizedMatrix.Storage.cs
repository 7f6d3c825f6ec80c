namespace LoRA.Managed.Kernels;

/// <summary>
/// A <see cref="QuantizedMatrix"/>'s stored arrays as they are, for a cache that saves a quantised weight and installs
/// it again without quantising (<c>Models/Hf/QuantizedWeightCache</c>). The arrays are the matrix's own, not copies:
/// the writer only reads them, and <see cref="FromStorage"/> adopts fresh arrays the reader allocated. The adopting
/// constructor is the only one: <see cref="Quantize"/> makes the arrays and hands them over the same way.
/// </summary>
public sealed unsafe partial class QuantizedMatrix
{
    /// <summary>
    /// The arrays behind the weight, in the order <see cref="FromStorage"/> takes them: F32 <c>float[]</c>; BF16
    /// <c>ushort[]</c>; F16 <c>Half[]</c>; int8 <c>sbyte[]</c> then the row scales <c>float[]</c>; NF4 the packed
    /// <c>byte[]</c>, the block scales' codes <c>byte[]</c>, their absmax per 256 blocks <c>float[]</c>, plus
    /// <paramref name="offset"/> (NF4's double-quantisation offset; 0 otherwise).
    /// </summary>
    internal Array[] StorageArrays(out float offset)
    {
        offset = _absmaxOffset;
        return DType switch
        {
            BaseDType.F32 => [_f32!],
            BaseDType.Bf16 => [_bf16!],
            BaseDType.F16 => [_f16!],
            BaseDType.Int8 => [_int8!, _rowScales!],
            _ => [_nf4!, _absmaxCodes!, _absmax2!],
        };
    }

    /// <summary>A matrix over arrays laid out as <see cref="StorageArrays"/> gives them (adopted, not
    /// copied).</summary>
    /// <exception cref="ArgumentException">An array is missing, of another element type or of another length than
    /// <c>[rows, columns]</c> in <paramref name="dtype"/> needs (the message says which).</exception>
    internal static QuantizedMatrix FromStorage(int rows, int columns, BaseDType dtype, Array[] arrays, float offset)
    {
        ArgumentNullException.ThrowIfNull(arrays);
        if (rows < 0 || columns < 0) throw new ArgumentException($"QuantizedMatrix: shape [{rows}, {columns}].");
        return new QuantizedMatrix(rows, columns, dtype, arrays, offset);
    }

    private QuantizedMatrix(int rows, int columns, BaseDType dtype, Array[] arrays, float offset)
    {
        Rows = rows;
        Columns = columns;
        DType = dtype;
        int n = checked(rows * columns);
        switch (dtype)
        {
            case BaseDType.F32:
                _f32 = Take<float>(arrays, 0, 1, n, dtype);
                break;
            case BaseDType.Bf16:
                _bf16 = Take<ushort>(arrays, 0, 1, n, dtype);
                break;
            case BaseDType.F16:
                _f16 = Take<Half>(arrays, 0, 1, n, dtype);
                break;
            case BaseDType.Int8:
                _int8 = Take<sbyte>(arrays, 0, 2, n, dtype);
                _rowScales = Take<float>(arrays, 1, 2, rows, dtype);
                break;
            case BaseDType.Nf4:
                int blocks = Nf4.BlockCount(n);
                _nf4 = Take<byte>(arrays, 0, 3, Nf4.PackedLength(n), dtype);
                _absmaxCodes = Take<byte>(arrays, 1, 3, blocks, dtype);
                _absmax2 = Take<float>(arrays, 2, 3, DynamicQuant8.BlockCount(blocks), dtype);
                _absmaxOffset = offset;
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown base dtype");
        }
    }

    private static T[] Take<T>(Array[] arrays, int index, int count, int length, BaseDType dtype)
    {
        if (arrays.Length != count)
            throw new ArgumentException($"QuantizedMatrix: {dtype} is stored in {count} arrays, got {arrays.Length}.");
        // The exact type: the runtime lets a byte[] pass for an sbyte[] (and ushort[] for short[]) in an "is" test.
        if (arrays[index]?.GetType() != typeof(T[]) || arrays[index].Length != length)
            throw new ArgumentException($"QuantizedMatrix: {dtype} array {index} must be {typeof(T).Name}[{length}], "
                + $"got {arrays[index]?.GetType().Name ?? "null"}"
                + (arrays[index] is { } x ? $" of {x.Length}" : "") + ".");
        return (T[])arrays[index];
    }
}
