using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd;

/// <summary>
/// The record of operations for reverse-mode differentiation. While grad mode is on, every op whose
/// inputs require a gradient appends itself here; since an op is recorded after its inputs exist,
/// the tape is already in topological order and backward simply walks it in reverse.
/// </summary>
/// <remarks>
/// There is one tape per thread, so training loops on different threads do not mix. Unlike PyTorch, whose
/// graph is freed when its output is dropped, recorded ops stay on the tape (with the tensors they read)
/// until <see cref="Backward(Tensor)"/>, <see cref="Clear"/> or the next <see cref="TensorArena.Activate"/>: run
/// inference inside <c>using (Tape.NoGrad())</c>, or call <see cref="Clear"/>, or the tape grows with every forward.
/// </remarks>
public sealed class Tape
{
    [ThreadStatic] private static Tape? t_current;
    [ThreadStatic] private static int t_noGradDepth;

    private readonly List<Op> _ops = new(64);

    /// <summary>This thread's tape.</summary>
    public static Tape Current => t_current ??= new Tape();

    /// <summary>False inside a <see cref="NoGrad"/> scope: nothing is recorded.</summary>
    public static bool IsGradEnabled => t_noGradDepth == 0;

    /// <summary>Opens a scope in which no op is recorded (as <c>with torch.no_grad():</c>); dispose it to
    /// leave.</summary>
    public static NoGradScope NoGrad()
    {
        t_noGradDepth++;
        return new NoGradScope();
    }

    // Clamped, so disposing a scope twice cannot switch recording off for the rest of the thread.
    internal static void LeaveNoGrad()
    {
        if (t_noGradDepth > 0) t_noGradDepth--;
    }

    /// <summary>The arena ops take their outputs from, or null (see <see cref="TensorArena.Activate"/>).</summary>
    public TensorArena? Arena { get; internal set; }

    /// <summary>A tensor for an op's output: from the active arena, or freshly allocated.</summary>
    public static Tensor NewTensor(ReadOnlySpan<int> shape)
    {
        TensorArena? arena = t_current?.Arena;
        return arena is not null ? arena.Rent(shape) : new Tensor(shape.ToArray());
    }

    /// <summary>
    /// A tensor of shape <paramref name="shape"/> sharing <paramref name="source"/>'s storage (no copy): from the
    /// active arena, or new. Writing into it writes into <paramref name="source"/>.
    /// </summary>
    internal static Tensor NewView(Tensor source, ReadOnlySpan<int> shape)
    {
        TensorArena? arena = t_current?.Arena;
        return arena is not null ? arena.RentView(source, shape)
            : new Tensor(source.Array, shape.ToArray()) { IsView = true };
    }

    /// <summary>A tensor shaped like <paramref name="like"/> with its last dimension replaced by
    /// <paramref name="last"/>.</summary>
    public static Tensor NewTensorLike(Tensor like, int last)
    {
        ArgumentNullException.ThrowIfNull(like);
        Span<int> shape = stackalloc int[like.Rank];
        like.Shape.CopyTo(shape);
        shape[^1] = last;
        return NewTensor(shape);
    }

    /// <summary>An op record: reused from the active arena, or new.</summary>
    public static T NewOp<T>() where T : Op, new()
    {
        TensorArena? arena = t_current?.Arena;
        return arena is not null ? arena.RentOp<T>() : new T();
    }

    /// <summary>
    /// Records a new op of type <typeparamref name="T"/> producing <paramref name="output"/> on the current tape and
    /// returns it for the caller to store what its backward needs: the one way every op records itself.
    /// </summary>
    public static T Record<T>(Tensor output) where T : Op, new()
    {
        T op = NewOp<T>();
        op.SetOutput(output);
        Current.Record(op);
        return op;
    }

    /// <summary>Number of ops recorded since the last backward or <see cref="Clear"/>.</summary>
    public int Count => _ops.Count;

    /// <summary>True when an op reading these inputs must be recorded.</summary>
    public static bool ShouldRecord(Tensor a) => IsGradEnabled && a.RequiresGrad;

    /// <summary>True when an op reading these inputs must be recorded.</summary>
    public static bool ShouldRecord(Tensor a, Tensor? b) => IsGradEnabled
        && (a.RequiresGrad || (b?.RequiresGrad ?? false));

    /// <summary>True when an op reading these inputs must be recorded.</summary>
    public static bool ShouldRecord(Tensor a, Tensor? b, Tensor? c) =>
        IsGradEnabled && (a.RequiresGrad || (b?.RequiresGrad ?? false) || (c?.RequiresGrad ?? false));

    /// <summary>Appends an op; its output now requires a gradient.</summary>
    public void Record(Op op)
    {
        ArgumentNullException.ThrowIfNull(op);
        op.Output.RequiresGrad = true;
        op.Output.IsIntermediate = true;
        _ops.Add(op);
        OpProfiler.Active?.Recorded(op);
    }

    /// <summary>
    /// Backpropagates from the scalar <paramref name="root"/>: seeds ∂root/∂root = 1, runs every recorded op's backward
    /// in reverse, then clears the tape. Gradients of leaves (parameters, inputs) accumulate across calls until zeroed,
    /// as in PyTorch; an intermediate result's gradient is returned to a pool as soon as its op has used it, so it is
    /// not readable afterwards (PyTorch's non-leaf <c>.grad</c> is not kept either).
    /// </summary>
    /// <exception cref="InvalidOperationException">The root is not a single element or does not require a
    /// gradient.</exception>
    public void Backward(Tensor root)
    {
        ArgumentNullException.ThrowIfNull(root);
        if (root.Count != 1)
            throw new InvalidOperationException("Backward: the root must be a scalar, got shape " +
                $"{Shapes.Format(root.Shape)}.");
        if (!root.RequiresGrad)
            throw new InvalidOperationException("Backward: the root does not require a gradient (was it computed " +
                "under NoGrad, or from frozen tensors only?).");
        Run(root, default);
    }

    /// <summary>
    /// Backpropagates from <paramref name="root"/> of any shape, seeded with <paramref name="seed"/> (its gradient),
    /// then clears the tape: a checkpointed block's recomputation hands its output's gradient back this way.
    /// </summary>
    internal void Backward(Tensor root, ReadOnlySpan<float> seed)
    {
        if (seed.Length != root.Count)
        {
            _ops.Clear();
            throw new ArgumentException($"Backward: a seed of {seed.Length} values for a root of "
                + $"{Shapes.Format(root.Shape)}.");
        }
        if (!root.RequiresGrad)
        {
            _ops.Clear();
            return;   // nothing in the block needs a gradient
        }
        Run(root, seed);
    }

    private void Run(Tensor root, ReadOnlySpan<float> seed)
    {
        try
        {
            foreach (Op op in _ops) op.Output.ReleaseGrad();
            if (seed.IsEmpty) root.EnsureGrad()[0] = 1f;
            else seed.CopyTo(root.EnsureGrad());
            OpProfiler? profiler = OpProfiler.Active;
            for (int i = _ops.Count - 1; i >= 0; i--)
            {
                Op op = _ops[i];
                if (!op.Output.HasGrad) continue;
                long t0 = profiler is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
                op.Backward();
                if (profiler is not null) profiler.Backward(op, System.Diagnostics.Stopwatch.GetTimestamp() - t0);
                // Every op that reads this output was recorded later and has already run: its gradient is spent.
                op.Output.ReleaseGrad();
            }
        }
        finally
        {
            _ops.Clear();
            if (seed.IsEmpty) OpProfiler.Active?.AfterBackward();
        }
    }

    /// <summary>Makes <paramref name="tape"/> this thread's tape and returns the one it replaces (a checkpointed
    /// block records its recomputation on a tape of its own, inside the outer tape's backward).</summary>
    internal static Tape Swap(Tape tape)
    {
        Tape outer = Current;
        t_current = tape;
        return outer;
    }

    /// <summary>Forgets every recorded op without running backward.</summary>
    public void Clear() => _ops.Clear();
}

/// <summary>The scope returned by <see cref="Tape.NoGrad"/>; disposing it re-enables recording.</summary>
public readonly struct NoGradScope : IDisposable
{
    /// <summary>Leaves the no-grad scope.</summary>
    public void Dispose() => Tape.LeaveNoGrad();
}
