using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd;

/// <summary>
/// Reusable storage for the tensors and op records of a training step, so that a steady-state step
/// allocates nothing. A step runs the same ops with the same shapes every time; while an arena is
/// active, the i-th tensor an op asks for is the i-th tensor of the previous step (when its shape
/// matches), the way llm.c preallocates every activation once.
/// </summary>
/// <remarks>
/// Tensors produced inside <c>using (arena.Activate()) { ... }</c> are only valid until the next
/// activation: the next step overwrites them. Copy out anything you keep (a loss value, accuracy).
/// Activating also clears the tape: a step that recorded ops but never ran backward is discarded.
/// Outside an active arena, ops allocate fresh tensors as usual.
/// </remarks>
public sealed class TensorArena
{
    private readonly List<List<Tensor>> _tensors = new();
    private readonly List<Op> _ops = new();
    private int _nextTensor, _nextOp;

    /// <summary>Number of distinct tensors the arena holds.</summary>
    public int TensorCount => _tensors.Sum(s => s.Count);

    /// <summary>Starts a step: rewinds to the first slot and makes this the current thread's arena until
    /// disposed.</summary>
    /// <exception cref="InvalidOperationException">Another arena is already active on this thread.</exception>
    public ArenaScope Activate()
    {
        var tape = Tape.Current;
        if (tape.Arena is not null)
            throw new InvalidOperationException("TensorArena.Activate: an arena is already active on this thread.");
        // Ops still on the tape belong to an earlier step that never ran backward. Their tensors (and, for
        // this arena, the op records themselves) are about to be reused, so running them later would be
        // wrong: a record handed out again would sit on the tape twice and its gradient would count twice.
        tape.Clear();
        _nextTensor = 0;
        _nextOp = 0;
        tape.Arena = this;
        return new ArenaScope(tape);
    }

    /// <summary>
    /// Makes this arena the current one, rewound, for a stretch of inference inside another arena's step (one block of
    /// a model), and restores the outer arena when disposed. Two such arenas taking turns block by block hold two
    /// blocks' activations instead of every block's: block l+2 overwrites block l's tensors, which block l+1 has
    /// consumed. Only without recording: backward needs every block's tensors.
    /// </summary>
    /// <exception cref="InvalidOperationException">Gradients are being recorded, or this arena is the current
    /// one.</exception>
    internal NestedArenaScope EnterNested()
    {
        var tape = Tape.Current;
        if (Tape.IsGradEnabled)
            throw new InvalidOperationException("TensorArena.EnterNested: only for inference (inside Tape.NoGrad()).");
        if (ReferenceEquals(tape.Arena, this))
            throw new InvalidOperationException("TensorArena.EnterNested: already current.");
        TensorArena? outer = tape.Arena;
        _nextTensor = 0;
        _nextOp = 0;
        tape.Arena = this;
        return new NestedArenaScope(tape, outer);
    }

    /// <summary>Rewinds to the first slot without making the arena current (for a tape that takes it as its
    /// <see cref="Tape.Arena"/> directly: a checkpointed block's recomputation).</summary>
    internal void Rewind()
    {
        _nextTensor = 0;
        _nextOp = 0;
    }

    /// <summary>The next tensor slot with exactly this shape (contents are stale: the caller overwrites
    /// them).</summary>
    internal Tensor Rent(ReadOnlySpan<int> shape)
    {
        if (_nextTensor == _tensors.Count) _tensors.Add(new List<Tensor>(1));
        List<Tensor> slot = _tensors[_nextTensor++];
        foreach (Tensor t in slot)
        {
            if (t.IsView || !t.Shape.AsSpan().SequenceEqual(shape)) continue;
            t.RequiresGrad = false; // the op that rents it decides again whether it is recorded
            return t;
        }
        // A new shape at this position (the first step, or a last partial batch): keep it beside the others.
        var fresh = new Tensor(shape.ToArray());
        slot.Add(fresh);
        return fresh;
    }

    /// <summary>
    /// The next slot as a tensor of this shape over <paramref name="source"/>'s storage. A step views the same arena
    /// tensors every time, so the view made in the first step is found again; a slot keeps one view only, so a source
    /// that changes every step (a fresh input) cannot make it grow.
    /// </summary>
    internal Tensor RentView(Tensor source, ReadOnlySpan<int> shape)
    {
        if (_nextTensor == _tensors.Count) _tensors.Add(new List<Tensor>(1));
        List<Tensor> slot = _tensors[_nextTensor++];
        for (int i = 0; i < slot.Count; i++)
        {
            Tensor t = slot[i];
            if (!t.IsView) continue;
            if (ReferenceEquals(t.Array, source.Array) && t.Shape.AsSpan().SequenceEqual(shape))
            {
                t.RequiresGrad = false;
                return t;
            }
            slot.RemoveAt(i--);
        }
        var view = new Tensor(source.Array, shape.ToArray()) { IsView = true };
        slot.Add(view);
        return view;
    }

    /// <summary>The next op record of type <typeparamref name="T"/>, reused when the step repeats.</summary>
    internal T RentOp<T>() where T : Op, new()
    {
        if (_nextOp < _ops.Count && _ops[_nextOp] is T reuse)
        {
            _nextOp++;
            return reuse;
        }
        var op = new T();
        if (_nextOp < _ops.Count) _ops[_nextOp] = op; else _ops.Add(op);
        _nextOp++;
        return op;
    }
}

/// <summary>The scope returned by <see cref="TensorArena.Activate"/>; disposing it deactivates the arena.</summary>
public readonly struct ArenaScope : IDisposable
{
    private readonly Tape? _tape;

    internal ArenaScope(Tape tape) => _tape = tape;

    /// <summary>Deactivates the arena.</summary>
    public void Dispose()
    {
        if (_tape is not null) _tape.Arena = null;
    }
}

/// <summary>The scope returned by <see cref="TensorArena.EnterNested"/>; disposing it makes the outer arena current
/// again.</summary>
internal readonly struct NestedArenaScope : IDisposable
{
    private readonly Tape? _tape;
    private readonly TensorArena? _outer;

    internal NestedArenaScope(Tape tape, TensorArena? outer)
    {
        _tape = tape;
        _outer = outer;
    }

    /// <summary>Restores the outer arena (none when there was none).</summary>
    public void Dispose()
    {
        if (_tape is not null) _tape.Arena = _outer;
    }
}
