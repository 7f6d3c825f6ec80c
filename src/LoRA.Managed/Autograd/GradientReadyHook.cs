using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd;

/// <summary>
/// Optimizer-in-backward (PyTorch's <c>register_post_accumulate_grad_hook</c> pattern): the ops that support it report
/// each use of a parameter while recording and, in backward, each time they have added their share to its gradient;
/// when the last recorded use has reported, the gradient is final and the hook may update the parameter at once,
/// while its gradient is still in the cache, instead of in a separate pass over every parameter after backward.
/// </summary>
/// <remarks>
/// Only <see cref="Ops.LinearOp"/> reports (after its <c>∂x</c>, which reads the old weight). A parameter that other
/// ops read too must not be handed to a hook: its gradient would be called final before those ops added to it.
/// One hook at a time per thread, set by <see cref="Install"/> for the duration of one step.
/// </remarks>
internal abstract class GradientReadyHook
{
    [ThreadStatic] private static GradientReadyHook? t_current;

    /// <summary>This thread's hook, or null.</summary>
    public static GradientReadyHook? Current => t_current;

    /// <summary>Makes <paramref name="hook"/> (null: none) this thread's hook; returns the one it replaces.</summary>
    public static GradientReadyHook? Install(GradientReadyHook? hook)
    {
        GradientReadyHook? previous = t_current;
        t_current = hook;
        return previous;
    }

    /// <summary>A recorded op will add to <paramref name="parameter"/>'s gradient in backward.</summary>
    public abstract void Used(Tensor parameter);

    /// <summary>A recorded op has added its share to <paramref name="parameter"/>'s gradient.</summary>
    public abstract void Ready(Tensor parameter);
}
