namespace LoRA.Managed.IO;

/// <summary>
/// Refuses NaN and infinite values where they can only be a fault: weights read from a file, and weights about to be
/// written by a merge. A model holding one evaluates without complaint (every logit NaN, every prediction class 0),
/// so the check names the tensor and the first bad element instead.
/// </summary>
public static class FiniteValues
{
    /// <summary>The index of the first NaN or infinity in <paramref name="values"/>, or −1.</summary>
    public static int IndexOfNonFinite(ReadOnlySpan<float> values)
    {
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i])) return i;
        return -1;
    }

    /// <summary>Throws when <paramref name="values"/> (tensor <paramref name="tensor"/> of <paramref name="file"/>)
    /// holds a NaN or infinity.</summary>
    /// <exception cref="InvalidDataFormatException">The message names the file, the tensor, the element and its
    /// value.</exception>
    public static void Require(ReadOnlySpan<float> values, string file, string tensor)
    {
        int i = IndexOfNonFinite(values);
        if (i >= 0)
            throw new InvalidDataFormatException(file, SafeTensors.TensorField(tensor), $"element {i} is " +
                $"{values[i]}; weights must be finite.");
    }
}
