using LoRA.Managed.Tensors;

namespace LoRA.Managed.Nn;

/// <summary>A tensor that is a module's learnable state (<c>nn.Parameter</c>); requires a gradient unless
/// frozen.</summary>
public sealed class Parameter : Tensor
{
    /// <summary>Creates a zero-filled parameter that requires a gradient.</summary>
    public Parameter(params int[] shape) : base(shape) => RequiresGrad = true;

    /// <summary>Wraps data (not copied) as a parameter that requires a gradient.</summary>
    public Parameter(float[] data, params int[] shape) : base(data, shape) => RequiresGrad = true;
}
