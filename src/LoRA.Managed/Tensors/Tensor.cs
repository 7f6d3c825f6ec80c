
namespace LoRA.Managed.Tensors;

/// <summary>
/// A dense float32 tensor: row-major, contiguous, rank 1 to 4. Its storage is exposed as a
/// <see cref="Span{T}"/> so kernels read and write it without copies.
/// </summary>
/// <remarks>
/// Like PyTorch, a tensor may require a gradient; ops that read it while grad mode is on record
/// themselves on the current autograd tape, and <c>Backward()</c> (in <c>Autograd</c>) runs them in reverse,
/// accumulating into <see cref="Grad"/>.
/// </remarks>
public class Tensor
{
    private readonly float[] _data;
    private float[]? _grad;
    // Set by ZeroGrad: the buffer's contents are stale and the gradient is logically zero. Clearing waits for the
    // first reader; a kernel that overwrites the whole buffer (GradForOverwrite) skips the clearing altogether.
    private bool _gradStale;

    /// <summary>Creates a zero-filled tensor of the given shape.</summary>
    public Tensor(params int[] shape) : this(new float[Shapes.CheckedCount(shape, nameof(Tensor))], shape) { }

    /// <summary>Wraps <paramref name="data"/> (not copied) as a tensor of the given shape.</summary>
    /// <exception cref="ArgumentException">The shape is not rank 1–4, has a negative dimension, or does not match the
    /// data's length.</exception>
    public Tensor(float[] data, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        long count = Shapes.CheckedCount(shape, nameof(Tensor));
        if (count != data.Length)
            throw new ArgumentException($"Tensor: shape {Shapes.Format(shape)} holds {count} elements but the " +
                $"data has {data.Length}.");
        _data = data;
        Shape = (int[])shape.Clone();
    }

    /// <summary>The dimensions, outermost first.</summary>
    public int[] Shape { get; }

    /// <summary>Number of dimensions (1–4).</summary>
    public int Rank => Shape.Length;

    /// <summary>Total number of elements.</summary>
    public int Count => _data.Length;

    /// <summary>The storage, row-major.</summary>
    public Span<float> Data => _data;

    /// <summary>The underlying array (the same memory as <see cref="Data"/>).</summary>
    public float[] Array => _data;

    /// <summary>Whether gradients flow to this tensor.</summary>
    public bool RequiresGrad { get; set; }

    /// <summary>True when a gradient buffer has been allocated (by backward or <see cref="EnsureGrad"/>).</summary>
    public bool HasGrad => _grad is not null;

    /// <summary>The accumulated gradient, the same shape as the tensor; empty until backward reaches it.</summary>
    public Span<float> Grad
    {
        get
        {
            if (_gradStale) ClearStaleGrad();
            return _grad;
        }
    }

    /// <summary>The gradient's array, allocating a zeroed one on first use.</summary>
    public float[] EnsureGrad()
    {
        if (_gradStale) ClearStaleGrad();
        return _grad ??= IsIntermediate ? GradientPool.Current.RentZeroed(_data.Length) : new float[_data.Length];
    }

    /// <summary>
    /// The gradient's array for a kernel that is about to add its result to every element: <paramref name="overwrite"/>
    /// is true when the gradient is logically zero (just zeroed, or new), and the kernel must then write every element
    /// instead of adding (a GEMM with β = 0), which spares zeroing the buffer and reading the zeros back. This is
    /// PyTorch's <c>zero_grad(set_to_none=True)</c>, whose next backward writes <c>.grad</c> rather than adding to it.
    /// </summary>
    internal float[] GradForOverwrite(out bool overwrite)
    {
        overwrite = _gradStale || _grad is null;
        _gradStale = false;
        return _grad ??= IsIntermediate ? GradientPool.Current.Rent(_data.Length) : new float[_data.Length];
    }

    /// <summary>
    /// <see cref="GradForOverwrite"/> for a GEMM that adds into the gradient: the β to pass (0 when the gradient is
    /// still zero, so the GEMM writes it; 1 to add) and, in <paramref name="grad"/>, the array.
    /// </summary>
    internal float GradBeta(out float[] grad)
    {
        grad = GradForOverwrite(out bool overwrite);
        return overwrite ? 0f : 1f;
    }

    private void ClearStaleGrad()
    {
        System.Array.Clear(_grad!);
        _gradStale = false;
    }

    /// <summary>
    /// True for the output of a recorded op (set by the tape): its gradient is a pooled buffer that backward returns
    /// once the producing op has used it, so after backward only leaves (parameters, inputs) hold gradients, as in
    /// PyTorch where a non-leaf's <c>.grad</c> is not kept.
    /// </summary>
    internal bool IsIntermediate { get; set; }

    /// <summary>
    /// True for a tensor that shares another's storage (a reshape, an in-place softmax). An arena never hands such a
    /// tensor out as fresh storage: writing into it would overwrite the tensor it views.
    /// </summary>
    internal bool IsView { get; init; }

    /// <summary>
    /// Makes <paramref name="buffer"/> (a pooled buffer nobody else uses) this intermediate's gradient when it has none
    /// yet, sparing a copy; false, and nothing changed, otherwise.
    /// </summary>
    internal bool TryAdoptGrad(float[] buffer)
    {
        if (_grad is not null || !IsIntermediate || buffer.Length != _data.Length) return false;
        _grad = buffer;
        _gradStale = false;
        return true;
    }

    /// <summary>
    /// Hands this intermediate's gradient buffer to <paramref name="to"/> when it can take it as its own (see
    /// <see cref="TryAdoptGrad"/>): a reshape's or an add's backward passes the gradient on unchanged, so the buffer
    /// moves instead of being copied. False, and nothing changed, otherwise.
    /// </summary>
    internal bool TryPassGradTo(Tensor to)
    {
        if (_grad is null || !IsIntermediate || _gradStale || !to.TryAdoptGrad(_grad)) return false;
        _grad = null;
        return true;
    }

    /// <summary>Hands this intermediate's gradient buffer back to the pool; the tensor then has no gradient.</summary>
    internal void ReleaseGrad()
    {
        if (_grad is null) return;
        if (IsIntermediate) GradientPool.Current.Return(_grad);
        _grad = null;
        _gradStale = false;
    }

    /// <summary>
    /// Zeroes the gradient (keeps the buffer), as <c>tensor.grad.zero_()</c>. The memory is cleared lazily: by the
    /// first read of <see cref="Grad"/> or <see cref="EnsureGrad"/>, or never when backward's first write overwrites
    /// the whole gradient (a linear layer's weight gradient), so a training step makes no pass just to zero.
    /// </summary>
    public void ZeroGrad()
    {
        if (_grad is not null) _gradStale = true;
    }

    /// <summary>Size of dimension <paramref name="dim"/>; negative counts from the end as in PyTorch.</summary>
    public int Size(int dim) => Shape[dim < 0 ? Shape.Length + dim : dim];

    /// <summary>The element at a flat row-major index.</summary>
    [System.Runtime.CompilerServices.IndexerName("Element")]
    public float this[int index]
    {
        get => _data[index];
        set => _data[index] = value;
    }

    /// <summary>The element at (row, col) of a rank-2 tensor.</summary>
    [System.Runtime.CompilerServices.IndexerName("Element")]
    public float this[int row, int col]
    {
        get => _data[row * Shape[1] + col];
        set => _data[row * Shape[1] + col] = value;
    }

    /// <summary>The scalar value of a one-element tensor, as <c>tensor.item()</c>.</summary>
    public float Item()
    {
        if (_data.Length != 1)
            throw new InvalidOperationException($"Item: tensor of shape {Shapes.Format(Shape)} has " +
                $"{_data.Length} elements, not 1.");
        return _data[0];
    }

    /// <summary>A new tensor with the same shape and a copy of the data (no gradient history).</summary>
    public Tensor Clone() => new((float[])_data.Clone(), Shape) { RequiresGrad = false };

    /// <summary>Creates a tensor from nested rows, convenient in tests and samples.</summary>
    public static Tensor FromRows(float[][] rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        int cols = rows.Length == 0 ? 0 : rows[0].Length;
        var t = new Tensor(rows.Length, cols);
        for (int i = 0; i < rows.Length; i++)
        {
            if (rows[i].Length != cols)
                throw new ArgumentException($"FromRows: row {i} has {rows[i].Length} values, row 0 has {cols}.");
            rows[i].CopyTo(t._data, i * cols);
        }
        return t;
    }

    /// <inheritdoc />
    public override string ToString() => $"Tensor{Shapes.Format(Shape)}";
}
