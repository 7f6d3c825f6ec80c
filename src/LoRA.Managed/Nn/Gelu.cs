using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Nn;

/// <summary>
/// <c>nn.GELU(approximate='tanh')</c>: <c>½x(1 + tanh(√(2/π)(x + 0.044715x³)))</c>, GPT-2's activation
/// (Hendrycks &amp; Gimpel, 2016).
/// </summary>
public sealed class Gelu : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Gelu(input);
}
