namespace LoRA.Managed.Tensors;

/// <summary>Shape checks and formatting shared by every op, so errors name the op and both shapes.</summary>
public static class Shapes
{
    /// <summary>Formats a shape as PyTorch prints it: <c>[64, 784]</c>.</summary>
    public static string Format(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";

    /// <summary>Checks a shape is rank 1–4 with non-negative dimensions and returns its element count.</summary>
    public static int CheckedCount(int[] shape, string op)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.Length is < 1 or > 4)
            throw new ArgumentException($"{op}: rank must be 1 to 4, got shape {Format(shape)}.");
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"{op}: negative dimension in shape {Format(shape)}.");
            n *= d;
            if (n > int.MaxValue)
                throw new ArgumentException($"{op}: shape {Format(shape)} has more than {int.MaxValue} elements.");
        }
        return (int)n;
    }

    /// <summary>Throws unless <paramref name="t"/> has rank 2.</summary>
    public static void RequireMatrix(Tensor t, string op, string what)
    {
        if (t.Rank != 2) throw new ArgumentException($"{op}: {what} must be a matrix, got shape {Format(t.Shape)}.");
    }

    /// <summary>Throws unless the two shapes are equal.</summary>
    public static void RequireSame(Tensor a, Tensor b, string op)
    {
        if (!a.Shape.AsSpan().SequenceEqual(b.Shape))
            throw new ArgumentException($"{op}: shapes differ: {Format(a.Shape)} and {Format(b.Shape)}.");
    }
}
