namespace LoRA.Managed.Tensors;

/// <summary>
/// Gradient buffers for intermediate results, reused within and across backward passes. An intermediate's gradient
/// lives only from the moment backward first writes it until the op that produced it has run its own backward; the
/// tape then returns it here, so the next gradient of that length reuses the memory. A step's gradients therefore
/// take the size of the backward pass's widest frontier, not of every activation (PyTorch frees them the same way,
/// when the graph's last reference to a non-leaf gradient goes).
/// </summary>
/// <remarks>
/// One pool per thread, like the tape. Buffers are zeroed when rented, so a reused buffer is indistinguishable from a
/// fresh one and results stay bitwise the same. Steady-state steps rent and return the same lengths in the same
/// order, so after the first step nothing is allocated.
/// </remarks>
internal sealed class GradientPool
{
    [ThreadStatic] private static GradientPool? t_current;

    private readonly Dictionary<int, Stack<float[]>> _free = new();

    /// <summary>This thread's pool.</summary>
    public static GradientPool Current => t_current ??= new GradientPool();

    /// <summary>A zeroed buffer of <paramref name="length"/> floats.</summary>
    public float[] RentZeroed(int length)
    {
        float[] buffer = Rent(length);
        Array.Clear(buffer);
        return buffer;
    }

    /// <summary>A buffer of <paramref name="length"/> floats with stale contents, for a caller that overwrites
    /// it.</summary>
    public float[] Rent(int length) =>
        _free.TryGetValue(length, out var stack) && stack.TryPop(out float[]? buffer) ? buffer : new float[length];

    /// <summary>Takes <paramref name="buffer"/> back; the caller no longer uses it.</summary>
    public void Return(float[] buffer)
    {
        if (!_free.TryGetValue(buffer.Length, out var stack)) _free[buffer.Length] = stack = new Stack<float[]>();
        stack.Push(buffer);
    }
}
