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
/// times: no dropout (a second run would draw other masks).
/// </remarks>
internal sealed class CheckpointOp : Op
{
    [ThreadStatic] private static TensorArena? t_scratch;
    [ThreadStatic] private static Tape? t_tape;

    private Func<Tensor, Tensor> _block = null!;
    private Tensor _x = null!;

    public override string Name => "checkpoint";

    public static Tensor Apply(Func<Tensor, Tensor> block, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(block);
        ArgumentNullException.ThrowIfNull(x);
        if (!Tape.IsGradEnabled) return block(x);
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
        return y;
    }

    public override void Backward()
    {
        TensorArena arena = t_scratch ??= new TensorArena();
        Tape tape = t_tape ??= new Tape();
        arena.Rewind();
        tape.Arena = arena;
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
        }
    }
}
