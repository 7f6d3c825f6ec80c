using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd.Ops;

/// <summary>
/// Gradient checkpointing (<c>torch.utils.checkpoint</c>, what <c>model.gradient_checkpointing_enable()</c> and PEFT's
/// <c>prepare_model_for_kbit_training</c> turn on for QLoRA): <c>y = block(x)</c> runs without recording, its
/// intermediates in a scratch arena the next block overwrites, and only x and y stay in the step's arena. Backward
/// runs the block again on x, recording on a tape and into an arena of its own, and backpropagates ∂y through that
/// recomputation, which accumulates ∂x into x and the block's parameter gradients into their leaves.
/// </summary>
/// <remarks>
/// A step then holds each block's input and output plus one block's activations instead of every block's, for one
/// more forward per block. The forward and the recomputation share one arena, the thread's, reused block after block
/// and step after step (a block's forward tensors are dead once its output is copied out, and a recomputation's once
/// its gradients are handed on), so a warm step still allocates nothing. The block must compute the same thing both
/// times, so the states of the generators it draws dropout masks from are saved before the forward and put back for
/// the recomputation, then returned to where training had left them (<c>torch.utils.checkpoint</c>'s
/// <c>preserve_rng_state</c>).
/// </remarks>
internal sealed class CheckpointOp : Op
{
    [ThreadStatic] private static TensorArena? t_scratch;
    [ThreadStatic] private static Tape? t_tape;

    [ThreadStatic] private static uint[]? t_states;

    private Func<Tensor, Tensor> _block = null!;
    private Tensor _x = null!;
    private List<TorchGenerator>? _generators;
    // The generators' states before the forward, StateWords each; kept on the reused record, so it grows once.
    private uint[]? _states;

    public override string Name => "checkpoint";

    /// <summary>y = block(x), recomputed in backward; <paramref name="generators"/> are those the block draws from
    /// (its dropout), whose states the recomputation starts from again.</summary>
    public static Tensor Apply(Func<Tensor, Tensor> block, Tensor x, List<TorchGenerator>? generators = null)
    {
        ArgumentNullException.ThrowIfNull(block);
        ArgumentNullException.ThrowIfNull(x);
        if (!Tape.IsGradEnabled) return block(x);
        int words = (generators?.Count ?? 0) * TorchGenerator.StateWords;
        Span<uint> before = Scratch(ref t_states, words);
        for (int i = 0; i < words / TorchGenerator.StateWords; i++)
            generators![i].SaveState(before.Slice(i * TorchGenerator.StateWords, TorchGenerator.StateWords));
        Tensor inner;
        TensorArena scratch = t_scratch ??= new TensorArena();
        using (Tape.NoGrad())
        using (scratch.EnterNested())
            inner = block(x);
        // The output outlives the scratch (the next block overwrites it): a copy in the step's arena.
        Tensor y = Tape.NewTensor(inner.Shape);
        inner.Data.CopyTo(y.Data);
        // Recorded whatever x needs: the block's own parameters (LoRA's factors) may take gradients.
        var op = Tape.Record<CheckpointOp>(y);
        op._block = block;
        op._x = x;
        op._generators = generators;
        before.CopyTo(Scratch(ref op._states, words));
        return y;
    }

    // The first `words` of a buffer that grows when it must and is otherwise reused.
    private static Span<uint> Scratch(ref uint[]? buffer, int words)
    {
        if (buffer is null || buffer.Length < words) buffer = new uint[words];
        return buffer.AsSpan(0, words);
    }

    public override void Backward()
    {
        TensorArena arena = t_scratch ??= new TensorArena();
        Tape tape = t_tape ??= new Tape();
        arena.Rewind();
        tape.Arena = arena;
        // The generators go back to their state before the forward for the recomputation (the same masks), and then
        // on to where training had left them.
        int count = _generators?.Count ?? 0, w = TorchGenerator.StateWords;
        Span<uint> now = Scratch(ref t_states, count * w);
        for (int i = 0; i < count; i++)
        {
            _generators![i].SaveState(now.Slice(i * w, w));
            _generators[i].LoadState(_states!.AsSpan(i * w, w));
        }
        Tape outer = Tape.Swap(tape);
        try
        {
            Tensor y = _block(_x);
            // ∂x lands in x's own gradient (x is the previous block's output, or a leaf), as if never recomputed.
            tape.Backward(y, Output.Grad);
        }
        finally
        {
            tape.Clear();
            tape.Arena = null;
            Tape.Swap(outer);
            for (int i = count - 1; i >= 0; i--) _generators![i].LoadState(now.Slice(i * w, w));
        }
    }
}
