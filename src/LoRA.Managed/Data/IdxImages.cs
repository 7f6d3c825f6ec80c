namespace LoRA.Managed.Data;

/// <summary>
/// The images of an IDX image file (magic 2051): <see cref="Count"/> images of <see cref="Rows"/>×<see cref="Columns"/>
/// unsigned bytes, stored row-major one after the other, as in the file.
/// </summary>
public sealed class IdxImages
{
    /// <summary>Wraps <paramref name="pixels"/> (not copied).</summary>
    /// <exception cref="ArgumentException">The pixel count is not <c>count·rows·columns</c>.</exception>
    public IdxImages(int count, int rows, int columns, byte[] pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if (count < 0 || rows < 0 || columns < 0 || (long)count * rows * columns != pixels.Length)
            throw new ArgumentException($"IdxImages: {count}×{rows}×{columns} images do not match " +
                $"{pixels.Length} pixels.");
        Count = count; Rows = rows; Columns = columns; Pixels = pixels;
    }

    /// <summary>Number of images.</summary>
    public int Count { get; }

    /// <summary>Image height.</summary>
    public int Rows { get; }

    /// <summary>Image width.</summary>
    public int Columns { get; }

    /// <summary>Pixels of one image (rows × columns).</summary>
    public int ImageSize => Rows * Columns;

    /// <summary>All pixels, image after image, row-major, 0..255.</summary>
    public byte[] Pixels { get; }
}
