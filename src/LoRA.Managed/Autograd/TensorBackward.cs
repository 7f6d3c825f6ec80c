using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd;

/// <summary><c>loss.backward()</c>: lives with the tape, so tensors know nothing of autograd.</summary>
public static class TensorBackward
{
    /// <summary>
    /// Backpropagates from this scalar (or any tensor, with a seed of ones) through the ops recorded on the current
    /// <see cref="Tape"/>, accumulating into the gradients of the tensors that require one.
    /// </summary>
    public static void Backward(this Tensor tensor) => Tape.Current.Backward(tensor);
}
