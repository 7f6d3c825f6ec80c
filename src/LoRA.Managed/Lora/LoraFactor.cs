using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Lora;

/// <summary>
/// One LoRA factor: a bias-free linear map holding a single parameter named <c>weight</c>, as PEFT's
/// <c>lora_A[name]</c> / <c>lora_B[name]</c> (<c>nn.Linear(..., bias=False)</c>), so its state_dict name ends
/// in <c>.weight</c>. It is applied by <see cref="LoraLinear"/>, which calls <see cref="Forward"/> on it.
/// </summary>
public sealed class LoraFactor : Module
{
    /// <summary>Creates a zero factor of shape (out, in).</summary>
    public LoraFactor(int outFeatures, int inFeatures) =>
        Weight = RegisterParameter("weight", new Parameter(outFeatures, inFeatures));

    /// <summary>The factor's matrix, (out, in).</summary>
    public Parameter Weight { get; }

    /// <summary><c>x·Weightᵀ</c>.</summary>
    public override Tensor Forward(Tensor input) => Autograd.Functional.Linear(input, Weight);
}
